using System.Text;

namespace Loom.Gateway.Tokenization;

/// <summary>BPE over Unicode characters with byte_fallback and unk fusing, as HF's BPE model runs
/// SentencePiece-converted vocabularies (Mistral, Llama-2). Written by hand because
/// Microsoft.ML.Tokenizers' BpeTokenizer has no byte_fallback (&lt;0xNN&gt; tokens) and no
/// ignore_merges. These tokenizers have no pre-tokenizer, so a "word" can be a whole prompt: merging
/// uses a priority queue over a linked list (O(n log n)), with HF's (rank, position) order. No word
/// cache: on varied text, filling one cost more than it saved.</summary>
internal sealed class CharBpeModel : IBpeWordModel
{
    // Texts longer than this are split at '▁' boundaries when that is exact (see below).
    private const int MaxUnsplitLength = 64;
    private const char SpaceMark = '▁';

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly int[]? _byteIds;
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _ignoreMerges;
    // Id of each BMP character that is a vocabulary entry (-1: none), to avoid a substring and a
    // dictionary lookup per character.
    private readonly int[] _bmpIds = new int[65536];
    // True when no vocabulary entry has '▁' right after another character: then no token can
    // span such a boundary, so a long text splits there exactly into short pieces.
    private readonly bool _splitAtSpaceMarks;
    private readonly int _maxTokenLength;
    private readonly bool _perCodePointBound;

    public CharBpeModel(Dictionary<string, int> vocab, List<(string A, string B)> merges, bool byteFallback, string? unkToken,
        bool fuseUnk, bool ignoreMerges)
    {
        _vocab = vocab;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (a, b) = merges[rank];
            if (vocab.TryGetValue(a, out int ia) && vocab.TryGetValue(b, out int ib) && vocab.TryGetValue(a + b, out int merged))
            {
                // First occurrence wins, like HF's map built in merge order.
                _merges.TryAdd(Key(ia, ib), (rank, merged));
            }
        }
        if (byteFallback)
        {
            _byteIds = new int[256];
            for (int b = 0; b < 256; b++)
            {
                _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
            }
        }
        Array.Fill(_bmpIds, -1);
        _splitAtSpaceMarks = true;
        foreach (var (token, id) in vocab)
        {
            if (token.Length == 1)
            {
                _bmpIds[token[0]] = id;
            }
            for (int i = 1; i < token.Length && _splitAtSpaceMarks; i++)
            {
                _splitAtSpaceMarks = !(token[i] == SpaceMark && token[i - 1] != SpaceMark);
            }
        }
        _unkId = unkToken is not null && vocab.TryGetValue(unkToken, out int unk) ? unk : null;
        _fuseUnk = fuseUnk;
        // UTF-16 length bounds a token's code points from above, which keeps MinTokens a lower bound.
        _maxTokenLength = Math.Max(1, vocab.Keys.Select(k => k.Length).DefaultIfEmpty(1).Max());
        bool everyByte = _byteIds is not null && Array.TrueForAll(_byteIds, id => id >= 0);
        _perCodePointBound = everyByte || (_unkId is not null && !fuseUnk);
        _ignoreMerges = ignoreMerges;
    }

    /// <summary>
    /// Each token is a vocabulary entry (at most <see cref="_maxTokenLength"/> code points), a
    /// byte-fallback token (part of one code point) or unk for one code point: so a word of c code
    /// points is at least c / that many tokens. Not when unknown characters can vanish (no unk, no
    /// complete byte fallback) or fuse into one unk (fuse_unk): then 0 is the only sound bound.
    /// </summary>
    public int MinTokens(string word)
    {
        if (!_perCodePointBound)
        {
            return 0;
        }
        int codePoints = word.Length;
        for (int i = 0; i + 1 < word.Length; i++)
        {
            if (char.IsHighSurrogate(word[i]) && char.IsLowSurrogate(word[i + 1]))
            {
                codePoints--;
                i++;
            }
        }
        return (codePoints + _maxTokenLength - 1) / _maxTokenLength;
    }

    public void EncodeWord(string word, List<int> ids)
    {
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole))
        {
            ids.Add(whole);
            return;
        }
        if (!_splitAtSpaceMarks || word.Length <= MaxUnsplitLength)
        {
            EncodePiece(word, ids);
            return;
        }
        int start = 0;
        for (int i = 1; i <= word.Length; i++)
        {
            if (i == word.Length || (word[i] == SpaceMark && word[i - 1] != SpaceMark))
            {
                EncodePiece(word[start..i], ids);
                start = i;
            }
        }
    }

    private void EncodePiece(string word, List<int> ids) => ids.AddRange(Merge(word));

    private static long Key(int a, int b) => BpeMerge.Key(a, b);

    private int[] Merge(string word)
    {
        // Initial symbols: one per character (a surrogate pair is one character).
        var sym = new List<int>(word.Length);
        Span<byte> utf8 = stackalloc byte[4];
        bool lastWasUnk = false;
        for (int i = 0; i < word.Length; i++)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            if (len == 1 && _bmpIds[word[i]] >= 0)
            {
                sym.Add(_bmpIds[word[i]]);
                lastWasUnk = false;
                continue;
            }
            string ch = word.Substring(i, len);
            i += len - 1;
            if (_vocab.TryGetValue(ch, out int id))
            {
                sym.Add(id);
                lastWasUnk = false;
                continue;
            }
            if (_byteIds is not null)
            {
                int n = Encoding.UTF8.GetBytes(ch, utf8);
                bool all = true;
                for (int k = 0; k < n; k++)
                {
                    all &= _byteIds[utf8[k]] >= 0;
                }
                if (all)
                {
                    for (int k = 0; k < n; k++)
                    {
                        sym.Add(_byteIds[utf8[k]]);
                    }
                    lastWasUnk = false;
                    continue;
                }
            }
            if (_unkId is { } unk)
            {
                if (!(_fuseUnk && lastWasUnk))
                {
                    sym.Add(unk);
                }
                lastWasUnk = true;
            }
            // Without an unk token HF fails the encode; dropping the char is the lenient choice.
        }

        return BpeMerge.Merge([.. sym], _merges);
    }
}
