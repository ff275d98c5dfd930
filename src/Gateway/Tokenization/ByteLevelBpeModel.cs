using Microsoft.ML.Tokenizers;

namespace Loom.Gateway.Tokenization;

/// <summary>Byte-level BPE (GPT-2, Llama-3, Qwen) on Microsoft.ML.Tokenizers' BpeTokenizer, which
/// maps UTF-8 bytes to GPT-2's printable chars itself (BpeOptions.ByteLevel) and caches merged
/// words. The library has no ignore_merges option (Llama-3 sets it), so that check is done here.
/// Its merge loop is quadratic in a word's length (a 1 MB run of one letter took 86 s of CPU), so
/// long words go through HF's own O(n log n) loop (<see cref="BpeMerge"/>), which gives the same ids.</summary>
internal sealed class ByteLevelBpeModel : IBpeWordModel
{
    /// <summary>Words longer than this (UTF-8 bytes) are merged by <see cref="BpeMerge"/>.</summary>
    internal const int LongWordBytes = 128;

    private static readonly char[] ByteToChar = Gpt2TokenizerFiles.ByteToUnicode();

    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int>? _wholeWords;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges = [];
    // Vocabulary id of each byte's printable char (-1: absent, then long words stay on the library).
    private readonly int[] _byteIds = new int[256];
    private readonly bool _everyByte;
    private readonly int _maxTokenBytes;

    public ByteLevelBpeModel(Dictionary<string, int> vocab, List<string> merges, bool ignoreMerges)
    {
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
        });
        _wholeWords = ignoreMerges ? vocab : null;
        for (int rank = 0; rank < merges.Count; rank++)
        {
            string m = merges[rank];
            int space = m.IndexOf(' ', 1);
            if (space < 0)
            {
                continue;
            }
            string a = m[..space], b = m[(space + 1)..];
            if (vocab.TryGetValue(a, out int ia) && vocab.TryGetValue(b, out int ib) && vocab.TryGetValue(a + b, out int merged))
            {
                _merges.TryAdd(BpeMerge.Key(ia, ib), (rank, merged)); // first occurrence wins, as HF
            }
        }
        for (int b = 0; b < 256; b++)
        {
            _byteIds[b] = vocab.TryGetValue(ByteToChar[b].ToString(), out int id) ? id : -1;
        }
        _everyByte = Array.TrueForAll(_byteIds, id => id >= 0);
        // One byte-level char per byte, so a token's length is the most bytes it can cover.
        _maxTokenBytes = Math.Max(1, vocab.Keys.Select(k => k.Length).DefaultIfEmpty(1).Max());
    }

    /// <summary>Every id covers at most the longest vocabulary entry's bytes.</summary>
    public int MinTokens(string word)
    {
        int bytes = System.Text.Encoding.UTF8.GetByteCount(word);
        return (int)(((long)bytes + _maxTokenBytes - 1) / _maxTokenBytes);
    }

    public void EncodeWord(string word, List<int> ids)
    {
        if (_wholeWords is not null && _wholeWords.TryGetValue(ToByteLevel(word), out int id))
        {
            // ignore_merges: a word that is itself a vocabulary entry is taken whole, even when
            // the merge order would have split it differently.
            ids.Add(id);
            return;
        }
        if (_everyByte && word.Length > LongWordBytes / 4 && System.Text.Encoding.UTF8.GetByteCount(word) > LongWordBytes)
        {
            ids.AddRange(MergeLong(word));
            return;
        }
        ids.AddRange(_bpe.EncodeToIds(word.AsSpan(), considerPreTokenization: false, considerNormalization: false));
    }

    /// <summary>HF's merge loop over the word's bytes; internal so tests can hold it to the library's ids.</summary>
    internal int[] MergeLong(string word)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(word);
        var symbols = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            symbols[i] = _byteIds[bytes[i]];
        }
        return BpeMerge.Merge(symbols, _merges);
    }

    /// <summary>The library's ids for a word (tests compare <see cref="MergeLong"/> with it).</summary>
    internal IReadOnlyList<int> LibraryIds(string word) =>
        _bpe.EncodeToIds(word.AsSpan(), considerPreTokenization: false, considerNormalization: false);

    internal static string ToByteLevel(string word)
    {
        int count = System.Text.Encoding.UTF8.GetByteCount(word);
        Span<byte> bytes = count <= 256 ? stackalloc byte[count] : new byte[count];
        System.Text.Encoding.UTF8.GetBytes(word, bytes);
        return string.Create(count, bytes.ToArray(), static (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++)
            {
                dst[i] = ByteToChar[src[i]];
            }
        });
    }
}
