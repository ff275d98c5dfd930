using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace Loom.Gateway.Tokenization;

/// <summary>A Hugging Face tokenizer.json (BPE models: byte-level like GPT-2/Llama-3/Qwen, or
/// SentencePiece-style with byte fallback like Mistral/Llama-2), encoding and decoding as HF's
/// `tokenizers` library does. Microsoft.ML.Tokenizers has no tokenizer.json loader, so the JSON is
/// parsed here; the byte-level BPE merge itself runs on its BpeTokenizer (see ByteLevelBpeModel).
/// Pipeline, as in HF: added tokens → normalizer → pre-tokenizer → BPE → post-processor.</summary>
public sealed class HfTokenizer : ITokenizer
{
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _idToToken;
    private readonly HfAddedToken?[] _addedById;
    private readonly Dictionary<string, HfAddedToken> _addedByContent;
    private readonly AddedTokenSplitter _rawSplitter;
    private readonly AddedTokenSplitter _normalizedSplitter;
    private readonly HfNormalizer? _normalizer;
    private readonly HfPreTokenizer _preTokenizer;
    private readonly IBpeWordModel _model;
    private readonly HfPostProcessor _postProcessor;
    private readonly HfDecoder _decoder;

    private HfTokenizer(JsonElement root, JsonElement? config)
    {
        var model = root.GetProperty("model");
        string modelType = model.TryGetProperty("type", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString()! : "BPE";
        if (modelType != "BPE")
        {
            throw new NotSupportedException($"tokenizer.json model '{modelType}' is not supported (only BPE)");
        }

        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in model.GetProperty("vocab").EnumerateObject())
        {
            _vocab[p.Name] = p.Value.GetInt32();
        }
        var added = new List<HfAddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
        {
            foreach (var t in at.EnumerateArray())
            {
                added.Add(new HfAddedToken(
                    t.GetProperty("id").GetInt32(),
                    t.GetProperty("content").GetString() ?? "",
                    Flag(t, "special"),
                    Flag(t, "single_word"),
                    Flag(t, "lstrip"),
                    Flag(t, "rstrip"),
                    Flag(t, "normalized")));
            }
        }

        int maxId = Math.Max(_vocab.Count == 0 ? -1 : _vocab.Values.Max(), added.Count == 0 ? -1 : added.Max(t => t.Id));
        VocabSize = maxId + 1;
        _idToToken = new string?[VocabSize];
        foreach (var (token, id) in _vocab)
        {
            _idToToken[id] = token;
        }
        _addedById = new HfAddedToken?[VocabSize];
        _addedByContent = new Dictionary<string, HfAddedToken>(StringComparer.Ordinal);
        foreach (var t in added)
        {
            _addedById[t.Id] = t;
            _addedByContent[t.Content] = t;
        }

        _normalizer = root.TryGetProperty("normalizer", out var n) ? HfNormalizer.Parse(n) : null;
        // HF matches non-normalized added tokens on the raw text and the rest after normalizing.
        _rawSplitter = new AddedTokenSplitter(added.Where(t => !t.Normalized || _normalizer is null));
        _normalizedSplitter = new AddedTokenSplitter(added.Where(t => t.Normalized && _normalizer is not null));
        _preTokenizer = HfPreTokenizer.Parse(root.TryGetProperty("pre_tokenizer", out var pt) ? pt : default);
        _postProcessor = HfPostProcessor.Parse(root.TryGetProperty("post_processor", out var pp) ? pp : default);
        _decoder = HfDecoder.Parse(root.TryGetProperty("decoder", out var d) ? d : default);

        var merges = ParseMerges(model.GetProperty("merges"));
        bool ignoreMerges = Flag(model, "ignore_merges");
        if (_preTokenizer.ByteLevel)
        {
            _model = new ByteLevelBpeModel(_vocab, merges.ConvertAll(m => m.A + " " + m.B), ignoreMerges);
        }
        else
        {
            string? unk = model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
            _model = new CharBpeModel(_vocab, merges, Flag(model, "byte_fallback"), unk, Flag(model, "fuse_unk"), ignoreMerges);
        }

        if (config is { } c)
        {
            BosToken = SpecialTokenText(c, "bos_token");
            EosToken = SpecialTokenText(c, "eos_token");
        }
    }

    public int VocabSize { get; }

    public string? BosToken { get; }

    public string? EosToken { get; }

    public static HfTokenizer Load(string modelDir)
    {
        string json = File.ReadAllText(Path.Combine(modelDir, "tokenizer.json"));
        string configPath = Path.Combine(modelDir, "tokenizer_config.json");
        return FromJson(json, File.Exists(configPath) ? File.ReadAllText(configPath) : null);
    }

    public static HfTokenizer FromJson(string tokenizerJson, string? tokenizerConfigJson)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJson);
        using var doc = JsonDocument.Parse(tokenizerJson);
        if (tokenizerConfigJson is null)
        {
            return new HfTokenizer(doc.RootElement, null);
        }
        using var config = JsonDocument.Parse(tokenizerConfigJson);
        return new HfTokenizer(doc.RootElement, config.RootElement);
    }

    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        TryEncode(text, addSpecialTokens, int.MaxValue, out var ids);
        return ids!;
    }

    /// <summary>
    /// <see cref="Encode"/> with the length check first. Added tokens, the normalizer and the
    /// pre-tokenizer run over the text (linear passes, no merging); then, if even the least each
    /// word can become (<see cref="IBpeWordModel.MinTokens"/>) sums past <paramref name="maxTokens"/>,
    /// the text is refused having merged nothing. Otherwise words are merged in order, and the encode
    /// stops as soon as the ids so far plus the least the remaining words can become pass the limit.
    /// Merging is the costly step (most of the time, and quadratic for long words in the library), so
    /// a prompt of megabytes is refused after merging few or none of its words.
    /// </summary>
    public bool TryEncode(string text, bool addSpecialTokens, int maxTokens, [NotNullWhen(true)] out int[]? ids)
    {
        ArgumentNullException.ThrowIfNull(text);
        ids = null;
        var pieces = Split(text);
        bool bounded = maxTokens < int.MaxValue;
        int[]? floors = null;
        long floor = 0;
        if (bounded)
        {
            floors = new int[pieces.Count];
            for (int i = 0; i < pieces.Count; i++)
            {
                floors[i] = pieces[i].Word is { } w ? _model.MinTokens(w) : 1;
                floor += floors[i];
            }
            if (floor > maxTokens)
            {
                return false;
            }
        }
        var list = new List<int>(Math.Min(text.Length / 3 + 4, bounded ? maxTokens + 1 : int.MaxValue));
        long merged = 0;
        try
        {
            for (int i = 0; i < pieces.Count; i++)
            {
                var (word, id) = pieces[i];
                if (word is null)
                {
                    list.Add(id);
                }
                else
                {
                    _model.EncodeWord(word, list);
                    merged += word.Length;
                }
                if (bounded)
                {
                    floor -= floors![i];
                    if (list.Count + floor > maxTokens)
                    {
                        return false;
                    }
                }
            }
        }
        finally
        {
            Interlocked.Add(ref _charsMerged, merged);
        }
        // The post-processor only adds ids (BOS, EOS), so the bound above held for the final count too.
        var result = addSpecialTokens ? _postProcessor.Apply(list) : [.. list];
        if (result.Length > maxTokens)
        {
            return false;
        }
        ids = result;
        return true;
    }

    /// <summary>The BPE model (tests hold its long-word path to the library's ids).</summary>
    internal IBpeWordModel Model => _model;

    /// <summary>Characters of words merged so far by this tokenizer (tests show the length check merges little).</summary>
    internal long CharsMerged => Interlocked.Read(ref _charsMerged);

    private long _charsMerged;

    /// <summary>The text as added-token ids (Word null) and pre-tokenized words, in order: HF's pipeline up to the model.</summary>
    private List<(string? Word, int Id)> Split(string text)
    {
        var pieces = new List<(string? Word, int Id)>();
        var segments = new List<(string Text, HfAddedToken? Token, int Offset)>();
        var normalizedSegments = new List<(string Text, HfAddedToken? Token, int Offset)>();
        var words = new List<string>();
        _rawSplitter.Split(text, 0, segments);
        foreach (var (segment, token, offset) in segments)
        {
            if (token is not null)
            {
                pieces.Add((null, token.Id));
                continue;
            }
            string normalized = _normalizer?.Apply(segment) ?? segment;
            normalizedSegments.Clear();
            _normalizedSplitter.Split(normalized, offset, normalizedSegments);
            foreach (var (piece, innerToken, pieceOffset) in normalizedSegments)
            {
                if (innerToken is not null)
                {
                    pieces.Add((null, innerToken.Id));
                    continue;
                }
                words.Clear();
                _preTokenizer.PreTokenize(piece, atStart: pieceOffset == 0, words);
                foreach (string word in words)
                {
                    pieces.Add((word, 0));
                }
            }
        }
        return pieces;
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize)
            {
                continue; // HF drops ids it cannot map
            }
            if (_addedById[id] is { } added)
            {
                if (!(skipSpecialTokens && added.Special))
                {
                    tokens.Add(added.Content);
                }
                continue;
            }
            if (_idToToken[id] is { } token)
            {
                tokens.Add(token);
            }
        }
        return _decoder.IsEmpty ? string.Join(' ', tokens) : _decoder.Decode(tokens);
    }

    public bool IsSpecial(int id) => (uint)id < (uint)VocabSize && _addedById[id] is { Special: true };

    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_addedByContent.TryGetValue(token, out var added))
        {
            return added.Id;
        }
        return _vocab.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>The token string of <paramref name="id"/> as stored in tokenizer.json, or null.</summary>
    public string? IdToToken(int id) =>
        (uint)id >= (uint)VocabSize ? null : _addedById[id]?.Content ?? _idToToken[id];

    /// <summary>Added tokens (special or not) as declared in tokenizer.json.</summary>
    public IEnumerable<HfAddedToken> AddedTokens => _addedByContent.Values;

    private static bool Flag(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    // bos_token / eos_token are a string, null, or an AddedToken object {"content": ...}.
    private static string? SpecialTokenText(JsonElement config, string name)
    {
        if (!config.TryGetProperty(name, out var v))
        {
            return null;
        }
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString(),
            _ => null,
        };
    }

    // Merges are "a b" strings (older files) or ["a", "b"] arrays (tokenizers >= 0.20).
    private static List<(string A, string B)> ParseMerges(JsonElement merges)
    {
        var list = new List<(string, string)>(merges.GetArrayLength());
        foreach (var m in merges.EnumerateArray())
        {
            if (m.ValueKind == JsonValueKind.Array)
            {
                list.Add((m[0].GetString() ?? "", m[1].GetString() ?? ""));
            }
            else
            {
                string s = m.GetString() ?? "";
                int space = s.IndexOf(' ', 1);
                list.Add(space < 0 ? (s, "") : (s[..space], s[(space + 1)..]));
            }
        }
        return list;
    }
}
