using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

public enum SequenceStatus
{
    Waiting,
    Running,
    Finished,
}

/// <summary>
/// One output stream: the prompt followed by the tokens generated so far, and how many of those
/// tokens already have K/V in the pool. Sample <see cref="Index"/> of its request (n &gt; 1 gives n
/// sequences). The token buffer is sized for prompt + max_tokens once, so decoding appends without
/// allocating.
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
        var prompt = request.PromptArray;
        _tokens = new int[prompt.Length + request.Request.Sampling.MaxTokens];
        prompt.CopyTo(_tokens, 0);
        Count = prompt.Length;
        // A resumed request's earlier output follows the prompt and counts as output (OutputLength).
        if (request.Request.ResumeTokenIds is { } resumed)
            foreach (var t in resumed) _tokens[Count++] = t;
    }

    public long Id { get; }
    public RequestState Request { get; }
    public int Index { get; }
    public SamplingState Sampling { get; }
    public SequenceStatus Status { get; set; } = SequenceStatus.Waiting;

    /// <summary>Prompt plus output tokens.</summary>
    public int Count { get; private set; }

    public int PromptLength => Request.PromptArray.Length;
    public int OutputLength => Count - PromptLength;

    /// <summary>Tokens whose K/V is in the pool; the rest are scheduled in coming steps.</summary>
    public int NumComputedTokens { get; set; }

    /// <summary>Preemptions suffered; a recomputed sequence keeps its output tokens.</summary>
    public int Preemptions { get; set; }

    /// <summary>
    /// A later sample of an n &gt; 1 request waits until the first has computed the prompt, so it
    /// finds the prompt's full blocks in the prefix cache instead of computing them again.
    /// </summary>
    public bool IsHeld => Index > 0 && Request.Sequences[0] is { Status: not SequenceStatus.Finished } first && first.NumComputedTokens < first.PromptLength;

    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Count);

    public void Append(int token) => _tokens[Count++] = token;

    public override string ToString() => $"seq {Id} ({Request.Request.RequestId}#{Index}) {Status} {NumComputedTokens}/{Count}";
}
