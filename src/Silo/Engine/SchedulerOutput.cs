using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>One scheduled piece of work: <c>NumNewTokens</c> tokens of a sequence, starting at its NumComputedTokens.</summary>
public readonly record struct ScheduledSequence(Sequence Sequence, int NumNewTokens)
{
    /// <summary>This chunk reaches the end of the known tokens, so its last position yields a new token.</summary>
    public bool Samples => Sequence.NumComputedTokens + NumNewTokens == Sequence.Count;
}

/// <summary>What one step runs. Reused across steps by the scheduler (no allocation per step).</summary>
public sealed class SchedulerOutput
{
    public List<ScheduledSequence> Scheduled { get; } = [];
    public List<Sequence> Preempted { get; } = [];
    public int NumTokens { get; set; }

    public void Clear()
    {
        Scheduled.Clear();
        Preempted.Clear();
        NumTokens = 0;
    }
}
