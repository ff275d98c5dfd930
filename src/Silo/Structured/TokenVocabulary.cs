using System.Text;
using System.Text.Json;

namespace Loom.Silo.Structured;

/// <summary>
/// The bytes each token id decodes to, read from the model's tokenizer.json, and a byte trie over
/// them (built once per vocabulary) that the automata walk to compute allowed-token masks.
/// </summary>
/// <remarks>
/// Byte-level BPE (GPT-2, Llama 3, Qwen): each character of a token string stands for one byte
/// through GPT-2's byte↔unicode table. SentencePiece-style vocabularies (Llama 2, Mistral): "▁"
/// is a space, "&lt;0xNN&gt;" is byte NN (byte fallback), anything else is its UTF-8. Special added
/// tokens (and ids the tokenizer does not define, such as Qwen's padding rows) have no bytes, so no
/// constraint ever allows them; EOS is allowed separately, only where the constraint accepts.
/// Without a tokenizer (the simulated backend, bare test models) token t &lt; 256 is byte t, as the
/// gateway's byte tokenizer decodes it.
/// </remarks>
public sealed class TokenVocabulary
{
    private readonly byte[]?[] _bytes;

    public int Size => _bytes.Length;

    /// <summary>A stable fingerprint of the token bytes, for cache keys.</summary>
    public ulong Fingerprint { get; }

    public VocabularyTrie Trie { get; }

    public TokenVocabulary(byte[]?[] tokenBytes)
    {
        _bytes = tokenBytes;
        var h = new System.IO.Hashing.XxHash64();
        for (int i = 0; i < tokenBytes.Length; i++)
        {
            h.Append(BitConverter.GetBytes(tokenBytes[i]?.Length ?? -1));
            if (tokenBytes[i] is { } b) h.Append(b);
        }
        Fingerprint = h.GetCurrentHashAsUInt64();
        Trie = new VocabularyTrie(tokenBytes);
    }

    /// <summary>The token's bytes; empty for special or undefined tokens.</summary>
    public ReadOnlySpan<byte> Bytes(int token) => (uint)token < (uint)_bytes.Length ? _bytes[token] : default;

    /// <summary>Token t &lt; 256 is byte t (but the EOS ids); the rest have no bytes.</summary>
    public static TokenVocabulary ByteLevel(int vocabSize, IReadOnlyList<int>? eosTokenIds = null)
    {
        var bytes = new byte[]?[vocabSize];
        for (int t = 0; t < Math.Min(256, vocabSize); t++) bytes[t] = eosTokenIds?.Contains(t) == true ? null : [(byte)t];
        return new TokenVocabulary(bytes);
    }

    /// <summary>Reads tokenizer.json (BPE, Unigram, WordLevel) for a model whose logits have <paramref name="vocabSize"/> rows.</summary>
    public static TokenVocabulary FromTokenizerJson(string json, int vocabSize)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        bool byteLevel = Mentions(root, "decoder", "ByteLevel") || Mentions(root, "pre_tokenizer", "ByteLevel");
        var bytes = new byte[]?[vocabSize];
        void Set(string piece, int id)
        {
            if ((uint)id < (uint)vocabSize) bytes[id] = byteLevel ? FromByteLevel(piece) : FromSentencePiece(piece);
        }
        if (model.TryGetProperty("vocab", out var vocab))
        {
            if (vocab.ValueKind == JsonValueKind.Object)
                foreach (var p in vocab.EnumerateObject()) Set(p.Name, p.Value.GetInt32());
            else if (vocab.ValueKind == JsonValueKind.Array) // Unigram: [[piece, score], ...] by id
            {
                int id = 0;
                foreach (var e in vocab.EnumerateArray()) Set(e[0].GetString()!, id++);
            }
        }
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
            {
                int id = a.GetProperty("id").GetInt32();
                if ((uint)id >= (uint)vocabSize) continue;
                bool special = a.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True;
                // Added tokens are matched on the raw text and decoded as their content.
                bytes[id] = special ? null : Encoding.UTF8.GetBytes(a.GetProperty("content").GetString()!);
            }
        return new TokenVocabulary(bytes);
    }

    private static bool Mentions(JsonElement root, string field, string type) =>
        root.TryGetProperty(field, out var f) && f.ValueKind == JsonValueKind.Object && f.GetRawText().Contains($"\"{type}\"", StringComparison.Ordinal);

    private static readonly Dictionary<char, byte> UnicodeToByte = BuildByteLevelTable();

    /// <summary>GPT-2's bytes_to_unicode, inverted.</summary>
    private static Dictionary<char, byte> BuildByteLevelTable()
    {
        var map = new Dictionary<char, byte>();
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[printable ? (char)b : (char)(256 + n++)] = (byte)b;
        }
        return map;
    }

    private static byte[]? FromByteLevel(string piece)
    {
        var b = new byte[piece.Length];
        for (int i = 0; i < piece.Length; i++)
        {
            if (!UnicodeToByte.TryGetValue(piece[i], out b[i])) return Encoding.UTF8.GetBytes(piece); // not a byte-level piece
        }
        return b;
    }

    private static byte[]? FromSentencePiece(string piece)
    {
        if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte v))
            return [v];
        return Encoding.UTF8.GetBytes(piece.Replace('\u2581', ' '));
    }
}

/// <summary>
/// The vocabulary's byte strings as a trie in preorder arrays: node i has a byte, a depth (1 =
/// first byte), the index just past its subtree (so a dead automaton state skips the whole
/// subtree at once) and the tokens whose bytes end there.
/// </summary>
public sealed class VocabularyTrie
{
    public byte[] Byte { get; }
    public int[] Depth { get; }
    public int[] SubtreeEnd { get; }
    public int[] TokenStart { get; }
    public int[] TokenCount { get; }
    public int[] Tokens { get; }
    public int MaxDepth { get; }
    public int Count => Byte.Length;

    public VocabularyTrie(byte[]?[] tokenBytes)
    {
        var ids = new List<int>();
        for (int t = 0; t < tokenBytes.Length; t++) if (tokenBytes[t] is { Length: > 0 }) ids.Add(t);
        ids.Sort((a, b) => { int c = tokenBytes[a].AsSpan().SequenceCompareTo(tokenBytes[b]); return c != 0 ? c : a.CompareTo(b); });
        Tokens = [.. ids];
        var bytes = new List<byte>();
        var depth = new List<int>();
        var end = new List<int>();
        var start = new List<int>();
        var count = new List<int>();
        var path = new Stack<int>();
        byte[] prev = [];
        for (int k = 0; k < Tokens.Length; k++)
        {
            byte[] b = tokenBytes[Tokens[k]]!;
            int lcp = 0;
            while (lcp < prev.Length && lcp < b.Length && prev[lcp] == b[lcp]) lcp++;
            while (path.Count > lcp) end[path.Pop()] = bytes.Count;
            for (int i = lcp; i < b.Length; i++)
            {
                bytes.Add(b[i]); depth.Add(i + 1); end.Add(-1); start.Add(k); count.Add(0);
                path.Push(bytes.Count - 1);
            }
            int node = path.Peek();
            if (count[node] == 0) start[node] = k;
            count[node]++;
            prev = b;
            MaxDepth = Math.Max(MaxDepth, b.Length);
        }
        while (path.Count > 0) end[path.Pop()] = bytes.Count;
        Byte = [.. bytes];
        Depth = [.. depth];
        SubtreeEnd = [.. end];
        TokenStart = [.. start];
        TokenCount = [.. count];
    }
}
