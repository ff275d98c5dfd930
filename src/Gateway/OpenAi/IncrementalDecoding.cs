using Loom.Gateway.Tokenization;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// Turns one output sequence's token ids into text as they arrive, never emitting half of a
/// multi-byte character. Narrow on purpose so the Tokenization team's IncrementalDetokenizer can
/// replace <see cref="LocalDecoderFactory"/> through DI with a one-class adapter.
/// </summary>
public interface IIncrementalDecoder
{
    /// <summary>Adds one token; returns the text that became final (often empty mid-character).</summary>
    string Append(int tokenId);

    /// <summary>Text still held back at the end of the sequence (e.g. an unfinished byte sequence).</summary>
    string Flush();
}

public interface IIncrementalDecoderFactory
{
    IIncrementalDecoder Create(ITokenizer tokenizer, IReadOnlyList<int> promptTokenIds, bool skipSpecialTokens);
}

/// <summary>vLLM's prefix/read-offset scheme over <see cref="ITokenizer.Decode"/>; see <see cref="LocalDecoder"/>.</summary>
public sealed class LocalDecoderFactory : IIncrementalDecoderFactory
{
    public IIncrementalDecoder Create(ITokenizer tokenizer, IReadOnlyList<int> promptTokenIds, bool skipSpecialTokens) =>
        new LocalDecoder(tokenizer, promptTokenIds, skipSpecialTokens);
}

/// <summary>
/// Decodes a window that starts a few tokens back (the "prefix") and emits only what the newest
/// tokens add to it. The prefix gives SentencePiece decoders their context (so a leading space
/// is not stripped) and lets byte-level BPE finish a character split across tokens: while the
/// window's text ends in U+FFFD the new bytes are held back.
/// </summary>
public sealed class LocalDecoder : IIncrementalDecoder
{
    // vLLM seeds the window with the last 5 prompt tokens; more context buys nothing.
    private const int PromptContext = 5;

    private readonly ITokenizer _tokenizer;
    private readonly bool _skipSpecial;
    private readonly List<int> _ids;
    private int _prefixOffset;
    private int _readOffset;

    public LocalDecoder(ITokenizer tokenizer, IReadOnlyList<int> promptTokenIds, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecialTokens;
        int context = Math.Min(PromptContext, promptTokenIds.Count);
        _ids = new List<int>(context + 64);
        for (int i = promptTokenIds.Count - context; i < promptTokenIds.Count; i++) _ids.Add(promptTokenIds[i]);
        _prefixOffset = 0;
        _readOffset = _ids.Count;
    }

    public string Append(int tokenId)
    {
        _ids.Add(tokenId);
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        string prefix = _tokenizer.Decode(span[_prefixOffset.._readOffset], _skipSpecial);
        string full = _tokenizer.Decode(span[_prefixOffset..], _skipSpecial);
        if (full.Length > prefix.Length && !full.EndsWith('\uFFFD') && full.StartsWith(prefix, StringComparison.Ordinal))
        {
            _prefixOffset = _readOffset;
            _readOffset = _ids.Count;
            return full[prefix.Length..];
        }
        return "";
    }

    public string Flush()
    {
        if (_readOffset == _ids.Count) return "";
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        string prefix = _tokenizer.Decode(span[_prefixOffset.._readOffset], _skipSpecial);
        string full = _tokenizer.Decode(span[_prefixOffset..], _skipSpecial);
        _prefixOffset = _readOffset = _ids.Count;
        return full.Length > prefix.Length && full.StartsWith(prefix, StringComparison.Ordinal) ? full[prefix.Length..] : "";
    }
}

/// <summary>
/// Finds stop strings in streamed text, across token boundaries. Text that could be the start of
/// a stop string is held back until it is known not to be one, so a stop string is never half
/// sent and then retracted.
/// </summary>
public sealed class StopStringScanner(IReadOnlyList<string> stops, bool includeStopInOutput)
{
    private string _pending = "";

    public bool Stopped { get; private set; }

    /// <summary>Returns the text safe to send now; sets <see cref="Stopped"/> when a stop string fired.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        if (stops.Count == 0) return text;
        string buf = _pending + text;
        int best = -1, bestLen = 0;
        foreach (var s in stops)
        {
            int at = buf.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best)) (best, bestLen) = (at, s.Length);
        }
        if (best >= 0)
        {
            Stopped = true;
            _pending = "";
            return buf[..(includeStopInOutput ? best + bestLen : best)];
        }
        int hold = HeldSuffixLength(buf);
        _pending = buf[(buf.Length - hold)..];
        return buf[..(buf.Length - hold)];
    }

    /// <summary>At the end of the sequence nothing can complete a stop string any more.</summary>
    public string Flush()
    {
        string rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }

    // The longest suffix of buf that is a proper prefix of some stop string.
    private int HeldSuffixLength(string buf)
    {
        int best = 0;
        foreach (var s in stops)
            for (int len = Math.Min(s.Length - 1, buf.Length); len > best; len--)
                if (buf.AsSpan(buf.Length - len).SequenceEqual(s.AsSpan(0, len))) { best = len; break; }
        return best;
    }
}
