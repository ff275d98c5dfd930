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
        _ignoreMerges = ignoreMerges;
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

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

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

        int count = sym.Count;
        if (count < 2)
        {
            return [.. sym];
        }
        var ids = sym.ToArray();
        var prev = new int[count];
        var next = new int[count];
        for (int i = 0; i < count; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : -1;
        }
        var alive = new bool[count];
        Array.Fill(alive, true);
        var queue = new PriorityQueue<int, long>();
        for (int i = 0; i + 1 < count; i++)
        {
            if (_merges.TryGetValue(Key(ids[i], ids[i + 1]), out var m))
            {
                queue.Enqueue(i, ((long)m.Rank << 32) | (uint)i);
            }
        }
        while (queue.TryDequeue(out int pos, out long priority))
        {
            int right = next[pos];
            if (!alive[pos] || right < 0)
            {
                continue;
            }
            // Stale entry: the pair at pos changed since it was queued.
            if (!_merges.TryGetValue(Key(ids[pos], ids[right]), out var m) || m.Rank != (int)(priority >> 32))
            {
                continue;
            }
            ids[pos] = m.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[pos] >= 0)
            {
                prev[next[pos]] = pos;
            }
            if (prev[pos] >= 0 && _merges.TryGetValue(Key(ids[prev[pos]], ids[pos]), out var left))
            {
                queue.Enqueue(prev[pos], ((long)left.Rank << 32) | (uint)prev[pos]);
            }
            if (next[pos] >= 0 && _merges.TryGetValue(Key(ids[pos], ids[next[pos]]), out var after))
            {
                queue.Enqueue(pos, ((long)after.Rank << 32) | (uint)pos);
            }
        }
        var output = new List<int>(count);
        for (int i = 0; i >= 0; i = next[i])
        {
            output.Add(ids[i]);
        }
        return [.. output];
    }
}
