using System.Runtime.CompilerServices;

namespace Loom.Gateway.Templates;

/// <summary>A Python dict: insertion order kept, and keys of any hashable scalar type, not only
/// strings. ByteDance Seed-OSS looks its thinking budgets up in <c>{0: 0, 512: 128, ...}</c>
/// with <c>dictsort</c> and <c>d[16384]</c>, which need the int keys to stay ints.</summary>
internal sealed class JinjaDict : OrderedDictionary<object, object?>
{
    public JinjaDict()
        : base(KeyComparer.Instance)
    {
    }

    /// <summary>The value as a key, or an error saying why Python would not hash it. None is
    /// hashable in Python but has no place in a .NET dictionary; templates do not key on it.</summary>
    public static object ToKey(object? key) => JinjaMarkup.Plain(key) switch
    {
        var k when IsKey(k) => k!,
        _ => throw new JinjaException(key is List<object?> or JinjaDict or JinjaNamespace
            ? $"unhashable type: '{JinjaValues.TypeName(key)}'"
            : $"A {JinjaValues.TypeName(key)} cannot be a dict key here (str, int, float and bool can)"),
    };

    /// <summary>Whether <paramref name="key"/> could be stored, so lookups can answer "absent" for the rest.</summary>
    public static bool IsKey(object? key) => key is string or long or double or bool;

    /// <summary>Python's rule for keys: equal values are one key, so 1, 1.0 and True collide.</summary>
    private sealed class KeyComparer : IEqualityComparer<object>
    {
        public static readonly KeyComparer Instance = new();

        public new bool Equals(object? x, object? y) => JinjaValues.AreEqual(x, y);

        public int GetHashCode(object o) => o switch
        {
            string s => StringComparer.Ordinal.GetHashCode(s),
            bool b => b ? 1 : 0,
            long l => l.GetHashCode(),
            double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => ((long)d).GetHashCode(),
            double d => d.GetHashCode(),
            _ => RuntimeHelpers.GetHashCode(o),
        };
    }
}
