namespace Loom.Benchmarks;

/// <summary>`--key value` and `--flag` options shared by the suites.</summary>
public sealed class BenchArgs
{
    private readonly Dictionary<string, string?> _values = new();

    public static BenchArgs Parse(string[] args)
    {
        var a = new BenchArgs();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{args[i]}'");
            string key = args[i][2..];
            string? value = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            a._values[key] = value;
        }
        return a;
    }

    public string? Get(string key) => _values.TryGetValue(key, out var v) ? v : null;
    public bool Has(string key) => _values.ContainsKey(key);
    public int GetInt(string key, int fallback) => Get(key) is { } v ? int.Parse(v) : fallback;
}
