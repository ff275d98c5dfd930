using Microsoft.ML.Tokenizers;

namespace Loom.Gateway.Tokenization;

/// <summary>Byte-level BPE (GPT-2, Llama-3, Qwen) on Microsoft.ML.Tokenizers' BpeTokenizer, which
/// maps UTF-8 bytes to GPT-2's printable chars itself (BpeOptions.ByteLevel) and caches merged
/// words. The library has no ignore_merges option (Llama-3 sets it), so that check is done here.</summary>
internal sealed class ByteLevelBpeModel : IBpeWordModel
{
    private static readonly char[] ByteToChar = Gpt2TokenizerFiles.ByteToUnicode();

    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int>? _wholeWords;

    public ByteLevelBpeModel(Dictionary<string, int> vocab, List<string> merges, bool ignoreMerges)
    {
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
        });
        _wholeWords = ignoreMerges ? vocab : null;
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
        ids.AddRange(_bpe.EncodeToIds(word.AsSpan(), considerPreTokenization: false, considerNormalization: false));
    }

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
