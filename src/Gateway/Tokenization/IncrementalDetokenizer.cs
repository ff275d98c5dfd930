namespace Loom.Gateway.Tokenization;

/// <summary>Turns generated token ids into streamed text with vLLM's method: keep prefix_offset and
/// read_offset; decode ids[prefix_offset:read_offset] and ids[prefix_offset:]; emit the difference
/// unless it ends in U+FFFD (a multi-byte character split across tokens, so wait for more ids).
/// Decoding a short window from prefix_offset, rather than each token alone, keeps decoder context
/// (e.g. SentencePiece's leading-space handling) right. Optional stop strings are applied to the
/// emitted text through a <see cref="StopStringMatcher"/>.</summary>
public sealed class IncrementalDetokenizer
{
    // vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET: prompt tokens decoded as context.
    private const int PromptContextTokens = 5;

    private readonly ITokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly StopStringMatcher? _stops;
    private readonly List<int> _ids = [];
    private int _prefixOffset;
    private int _readOffset;
    private readonly int _promptCount;

    /// <param name="promptIds">The prompt, so the first generated token is decoded in context
    /// (a SentencePiece "▁word" after a prompt keeps its space).</param>
    public IncrementalDetokenizer(ITokenizer tokenizer, bool skipSpecialTokens = true, StopStringMatcher? stops = null,
        ReadOnlySpan<int> promptIds = default)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _skipSpecialTokens = skipSpecialTokens;
        _stops = stops;
        _ids.AddRange(promptIds);
        _promptCount = _readOffset = _ids.Count;
        _prefixOffset = Math.Max(_readOffset - PromptContextTokens, 0);
    }

    /// <summary>Generated ids so far (after the prompt).</summary>
    public int GeneratedCount => _ids.Count - _promptCount;

    public bool Stopped => _stops?.Stopped ?? false;

    public DetokenizedDelta Add(int id)
    {
        if (Stopped)
        {
            return new DetokenizedDelta("", true);
        }
        _ids.Add(id);
        return Emit(Step(final: false));
    }

    /// <summary>End of generation: emits text still held back (a trailing U+FFFD, or the start
    /// of a stop string that never completed).</summary>
    public string Flush()
    {
        if (Stopped)
        {
            return "";
        }
        var delta = Emit(Step(final: true));
        return delta.Text + (_stops?.Flush() ?? "");
    }

    private DetokenizedDelta Emit(string text) => _stops is null ? new DetokenizedDelta(text, false) : _stops.Push(text);

    private string Step(bool final)
    {
        var all = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        string prefixText = _tokenizer.Decode(all[_prefixOffset.._readOffset], _skipSpecialTokens);
        string newText = _tokenizer.Decode(all[_prefixOffset..], _skipSpecialTokens);
        if (newText.Length > prefixText.Length && (final || !newText.EndsWith('\uFFFD')))
        {
            _prefixOffset = _readOffset;
            _readOffset = _ids.Count;
            return newText[prefixText.Length..];
        }
        return "";
    }
}
