using System.Text.Json;
using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>
/// The writer's half of the runtime's <see cref="GgufTokenizer"/> (which reads tokenizer.ggml.* back
/// into tokenizer.json): kept here because only the GGUF writer needs it.
/// </summary>
public static class GgufTokenizerWriter
{
    // llama.cpp token types, as GgufTokenizer reads them.
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    /// <summary>
    /// A Hugging Face tokenizer.json (and tokenizer_config.json) as tokenizer.ggml.* metadata, laid
    /// out as llama.cpp's converter lays it out. Byte-level BPE becomes <c>gpt2</c> with its merges
    /// and a <c>pre</c> named from its split regex (llama-bpe, qwen2 or gpt-2); SentencePiece-style
    /// BPE (byte fallback) becomes <c>llama</c>, each piece scored by the rank of the merge that
    /// makes it, as the .model's scores order them.
    /// </summary>
    public static void AddFromHuggingFace(GgufWriter g, string tokenizerJson, string? tokenizerConfigJson)
    {
        using var doc = JsonDocument.Parse(tokenizerJson);
        using var cfgDoc = JsonDocument.Parse(tokenizerConfigJson ?? "{}");
        var root = doc.RootElement;
        var cfg = cfgDoc.RootElement;
        var model = root.GetProperty("model");
        bool spm = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;
        string pre = root.TryGetProperty("pre_tokenizer", out var pt) ? pt.GetRawText() : "";
        pre = pre.Contains(@"\p{N}{1,3}", StringComparison.Ordinal) ? "llama-bpe"
            : pre.Contains(@"\p{N}|", StringComparison.Ordinal) ? "qwen2" : "gpt-2";
        var byId = new SortedDictionary<int, string>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) byId[p.Value.GetInt32()] = p.Name;
        var added = new Dictionary<int, bool>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
        {
            foreach (var t in at.EnumerateArray())
            {
                byId[t.GetProperty("id").GetInt32()] = t.GetProperty("content").GetString()!;
                added[t.GetProperty("id").GetInt32()] = t.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True;
            }
        }

        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : m[0].GetString() + " " + m[1].GetString()).ToArray();
        var rank = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int r = 0; r < merges.Length; r++) rank.TryAdd(merges[r].Replace(" ", "", StringComparison.Ordinal), r);
        int n = byId.Count == 0 ? 0 : byId.Keys.Max() + 1;
        var tokens = new string[n];
        var types = new int[n];
        var scores = new float[n];
        for (int i = 0; i < n; i++)
        {
            tokens[i] = byId.TryGetValue(i, out var s) ? s : $"[PAD{i}]";
            types[i] = !byId.ContainsKey(i) ? Unused
                : added.TryGetValue(i, out bool special) ? (spm && tokens[i] == "<unk>" ? Unknown : special ? Control : UserDefined)
                : spm && tokens[i].Length == 6 && tokens[i].StartsWith("<0x", StringComparison.Ordinal) ? Byte : Normal;
            scores[i] = rank.TryGetValue(tokens[i], out int mr) ? -mr : -i;
        }

        int Id(string key)
        {
            if (!cfg.TryGetProperty(key, out var v)) return -1;
            string? text = v.ValueKind == JsonValueKind.String ? v.GetString()
                : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString() : null;
            return text is null ? -1 : Array.IndexOf(tokens, text);
        }

        g.AddString("tokenizer.ggml.model", spm ? "llama" : "gpt2");
        if (!spm) g.AddString("tokenizer.ggml.pre", pre);
        g.AddStringArray("tokenizer.ggml.tokens", tokens);
        g.AddInt32Array("tokenizer.ggml.token_type", types);
        if (spm) g.AddFloat32Array("tokenizer.ggml.scores", scores);
        else g.AddStringArray("tokenizer.ggml.merges", merges);
        if (Id("bos_token") is >= 0 and var bos) g.AddUInt32("tokenizer.ggml.bos_token_id", (uint)bos);
        if (Id("eos_token") is >= 0 and var eos) g.AddUInt32("tokenizer.ggml.eos_token_id", (uint)eos);
        if (Id("pad_token") is >= 0 and var pad) g.AddUInt32("tokenizer.ggml.padding_token_id", (uint)pad);
        g.AddBool("tokenizer.ggml.add_bos_token", cfg.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind == JsonValueKind.True);
        if (cfg.TryGetProperty("chat_template", out var ct) && ct.ValueKind == JsonValueKind.String) g.AddString("tokenizer.chat_template", ct.GetString()!);
    }
}
