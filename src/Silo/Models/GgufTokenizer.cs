// Written here: no NuGet package converts a GGUF vocabulary (tokenizer.ggml.*) to or from tokenizer.json; the GGUF readers there wrap native llama.cpp.
using System.Text;
using System.Text.Json;

namespace Loom.Silo.Models;

/// <summary>
/// The tokenizer a GGUF file carries (tokenizer.ggml.*), rewritten as the tokenizer.json and
/// tokenizer_config.json a Hugging Face folder would hold, so the gateway's one tokenizer (and chat
/// template) path serves a lone .gguf file. <c>gpt2</c> becomes byte-level BPE with the file's merges
/// and the pre-tokenizer regex tokenizer.ggml.pre names; <c>llama</c> (SentencePiece) becomes BPE with
/// byte fallback and merges derived from the scores, as transformers' SentencePiece converter
/// derives them. Control and user-defined tokens become added tokens.
/// </summary>
public static class GgufTokenizer
{
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4;

    // Pre-tokenizer splits, as the tokenizer.json files of these families spell them.
    private const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>tokenizer.json and tokenizer_config.json text, or null when the file has no tokenizer.ggml.model.</summary>
    public static (string TokenizerJson, string TokenizerConfigJson)? Build(GgufFile f)
    {
        if (!f.TryGet("tokenizer.ggml.model", out string model)) return null;
        var tokens = f.Get<string[]>("tokenizer.ggml.tokens");
        int[] types = f.TryGet("tokenizer.ggml.token_type", out int[] tt) ? tt : Enumerable.Repeat(Normal, tokens.Length).ToArray();
        if (types.Length != tokens.Length)
            throw new ModelLoadException($"{f.Path}: tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens");
        bool spm = model switch
        {
            "llama" => true,
            "gpt2" => false,
            _ => throw new ModelLoadException($"{f.Path}: tokenizer.ggml.model '{model}' is not supported (gpt2, llama)"),
        };
        int? bos = f.TryGet("tokenizer.ggml.bos_token_id", out int b) ? b : null;
        int? eos = f.TryGet("tokenizer.ggml.eos_token_id", out int e) ? e : null;
        bool addBos = f.TryGet("tokenizer.ggml.add_bos_token", out bool ab) ? ab : spm;
        string pre = f.TryGet("tokenizer.ggml.pre", out string p) ? p : "default";

        var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteStartArray("added_tokens");
            for (int i = 0; i < tokens.Length; i++)
            {
                if (types[i] is not (Control or UserDefined or Unknown)) continue;
                w.WriteStartObject();
                w.WriteNumber("id", i);
                w.WriteString("content", tokens[i]);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", types[i] != UserDefined);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            if (spm)
            {
                w.WritePropertyName("normalizer");
                WriteRaw(w, """{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}""");
                w.WriteNull("pre_tokenizer");
            }
            else
            {
                string? regex = pre switch
                {
                    "llama-bpe" or "llama3" or "smaug-bpe" => Llama3Regex,
                    "qwen2" or "deepseek-r1-qwen" => Qwen2Regex,
                    _ => null,
                };
                if (pre is "qwen2" or "deepseek-r1-qwen")
                {
                    w.WritePropertyName("normalizer");
                    WriteRaw(w, """{"type":"NFC"}""");
                }
                else
                {
                    w.WriteNull("normalizer");
                }

                w.WritePropertyName("pre_tokenizer");
                if (regex is null)
                {
                    WriteRaw(w, """{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}""");
                }
                else
                {
                    w.WriteStartObject();
                    w.WriteString("type", "Sequence");
                    w.WriteStartArray("pretokenizers");
                    w.WriteStartObject();
                    w.WriteString("type", "Split");
                    w.WriteStartObject("pattern");
                    w.WriteString("Regex", regex);
                    w.WriteEndObject();
                    w.WriteString("behavior", "Isolated");
                    w.WriteBoolean("invert", false);
                    w.WriteEndObject();
                    WriteRaw(w, """{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}""");
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
            }

            w.WritePropertyName("post_processor");
            if (addBos && bos is { } bosId)
            {
                w.WriteStartObject();
                w.WriteString("type", "TemplateProcessing");
                w.WriteStartArray("single");
                w.WriteStartObject();
                w.WriteStartObject("SpecialToken");
                w.WriteString("id", tokens[bosId]);
                w.WriteNumber("type_id", 0);
                w.WriteEndObject();
                w.WriteEndObject();
                WriteRaw(w, """{"Sequence":{"id":"A","type_id":0}}""");
                w.WriteEndArray();
                w.WriteStartObject("special_tokens");
                w.WriteStartObject(tokens[bosId]);
                w.WriteString("id", tokens[bosId]);
                w.WriteStartArray("ids");
                w.WriteNumberValue(bosId);
                w.WriteEndArray();
                w.WriteStartArray("tokens");
                w.WriteStringValue(tokens[bosId]);
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndObject();
            }
            else
            {
                w.WriteNullValue();
            }

            w.WritePropertyName("decoder");
            WriteRaw(w, spm
                ? """{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}"""
                : """{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}""");

            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            int unk = Array.IndexOf(types, Unknown);
            if (spm && unk >= 0) w.WriteString("unk_token", tokens[unk]);
            else w.WriteNull("unk_token");
            w.WriteBoolean("fuse_unk", spm);
            w.WriteBoolean("byte_fallback", spm);
            w.WriteBoolean("ignore_merges", pre is "llama-bpe" or "llama3");
            w.WriteStartObject("vocab");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < tokens.Length; i++)
            {
                // HF keeps byte-level specials out of the BPE vocab; SentencePiece vocabularies hold them all.
                if (!spm && types[i] is Control or UserDefined) continue;
                if (seen.Add(tokens[i])) w.WriteNumber(tokens[i], i);
            }

            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var m in spm ? SentencePieceMerges(tokens, types, f) : f.Get<string[]>("tokenizer.ggml.merges")) w.WriteStringValue(m);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }

        var config = new MemoryStream();
        using (var w = new Utf8JsonWriter(config))
        {
            w.WriteStartObject();
            w.WriteBoolean("add_bos_token", addBos);
            if (bos is { } bi && bi < tokens.Length) w.WriteString("bos_token", tokens[bi]);
            if (eos is { } ei && ei < tokens.Length) w.WriteString("eos_token", tokens[ei]);
            if (f.TryGet("tokenizer.ggml.padding_token_id", out int pad) && pad < tokens.Length) w.WriteString("pad_token", tokens[pad]);
            if (f.TryGet("tokenizer.chat_template", out string template)) w.WriteString("chat_template", template);
            w.WriteEndObject();
        }

        return (Encoding.UTF8.GetString(json.ToArray()), Encoding.UTF8.GetString(config.ToArray()));
    }

    private static void WriteRaw(Utf8JsonWriter w, string json) => w.WriteRawValue(json, skipInputValidation: false);

    /// <summary>
    /// BPE merges equivalent to SentencePiece's score-ordered merging, as transformers derives them:
    /// every split of a token into two vocabulary pieces, ordered by the merged token's score (higher
    /// first), then its id, then the pieces' ids.
    /// </summary>
    private static IEnumerable<string> SentencePieceMerges(string[] tokens, int[] types, GgufFile f)
    {
        var scores = f.TryGet("tokenizer.ggml.scores", out float[] s) ? s : new float[tokens.Length];
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
            if (types[i] == Normal) ids.TryAdd(tokens[i], i);
        var merges = new List<(float Score, int Id, int L, int R, string Text)>();
        for (int i = 0; i < tokens.Length; i++)
        {
            if (types[i] != Normal) continue;
            string t = tokens[i];
            for (int at = 1; at < t.Length; at++)
            {
                if (char.IsLowSurrogate(t[at])) continue;
                if (ids.TryGetValue(t[..at], out int l) && ids.TryGetValue(t[at..], out int r))
                    merges.Add((scores[i], i, l, r, t[..at] + " " + t[at..]));
            }
        }

        return merges.OrderByDescending(m => m.Score).ThenBy(m => m.Id).ThenBy(m => m.L).ThenBy(m => m.R).Select(m => m.Text);
    }
}
