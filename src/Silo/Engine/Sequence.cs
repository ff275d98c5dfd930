namespace Loom.Silo.Engine;

public enum SequenceStatus
{
    Waiting,
    Running,
    Finished,
}

/// <summary>
/// One output stream: the prompt followed by the tokens generated so far, and how many of those
/// tokens already have K/V in the pool. A request with n &gt; 1 owns n sequences. The token buffer
/// is sized for prompt + max_tokens once, so decoding appends without allocating.
/// </summary>
public sealed class Sequence
{
    private readonly int[] _tokens;

    public Sequence(long id, RequestState request, int index, SamplingState sampling)
    {
        Id = id;
        Request = request;
        Index = index;
        Sampling = sampling;
        var prompt = request.Request.PromptTokenIds;
        _tokens = new int[prompt.Count + request.Request.Sampling.MaxTokens];
        for (int i = 0; i < prompt.Count; i++) _tokens[i] = prompt[i];
        Count = prompt.Count;
        // A resumed request's earlier output follows the prompt and counts as output (OutputLength).
        if (request.Request.ResumeOutputTokens is { } resumed)
            foreach (var t in resumed) _tokens[Count++] = t;
    }

    /// <summary>A sample forked from <paramref name="parent"/> after the prompt: same tokens, same computed KV.</summary>
    public Sequence(long id, Sequence parent, int index, SamplingState sampling)
    {
        Id = id;
        Request = parent.Request;
        Index = index;
        Sampling = sampling;
        _tokens = (int[])parent._tokens.Clone();
        Count = parent.Count;
        NumComputedTokens = parent.NumComputedTokens;
    }

    public long Id { get; }
    public RequestState Request { get; }
    public int Index { get; }
    public SamplingState Sampling { get; }
    public SequenceStatus Status { get; set; } = SequenceStatus.Waiting;

    /// <summary>Prompt plus output tokens.</summary>
    public int Count { get; private set; }

    public int PromptLength => Request.Request.PromptTokenIds.Count;
    public int OutputLength => Count - PromptLength;

    /// <summary>Tokens whose K/V is in the pool; the rest are scheduled in coming steps.</summary>
    public int NumComputedTokens { get; set; }

    /// <summary>Preemptions suffered; a recomputed sequence keeps its output tokens.</summary>
    public int Preemptions { get; set; }

    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Count);

    public int LastToken => _tokens[Count - 1];

    public void Append(int token) => _tokens[Count++] = token;

    public override string ToString() => $"seq {Id} ({Request.Request.RequestId}#{Index}) {Status} {NumComputedTokens}/{Count}";
}
