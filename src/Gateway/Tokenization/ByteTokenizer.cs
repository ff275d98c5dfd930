using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Loom.Gateway.Tokenization;

/// <summary>
/// Token i is byte i. Serves workers that ship no tokenizer.json (the simulated backend, bare
/// test models), so the HTTP API still works end to end on them; any vocabulary of 256+ fits.
/// </summary>
public sealed class ByteTokenizer(int vocabSize) : ITokenizer
{
    public int VocabSize { get; } = vocabSize >= 256 ? vocabSize : throw new ArgumentOutOfRangeException(nameof(vocabSize), "a byte tokenizer needs a vocabulary of at least 256");
    public string? BosToken => null;
    public string? EosToken => null;

    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var ids = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) ids[i] = bytes[i];
        return ids;
    }

    /// <summary>One token per UTF-8 byte: the length is known before encoding anything.</summary>
    public bool TryEncode(string text, bool addSpecialTokens, int maxTokens, [NotNullWhen(true)] out int[]? ids)
    {
        ids = Encoding.UTF8.GetByteCount(text) <= maxTokens ? Encode(text, addSpecialTokens) : null;
        return ids is not null;
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var bytes = new byte[ids.Length];
        int n = 0;
        foreach (var id in ids)
            if ((uint)id < 256u) bytes[n++] = (byte)id;
        return Encoding.UTF8.GetString(bytes, 0, n);
    }

    public bool IsSpecial(int id) => false;
    public int? TokenToId(string token) => null;
}
