using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Benchmarks.Baselines;

/// <summary>Static batching (pre-vLLM servers): a batch is admitted whole, and nothing joins until it has drained.</summary>
public sealed class StaticAdmission(int maxNumSeqs) : IAdmissionPolicy
{
    public bool MayAdmit(int runningAtStepStart, int running, int tokenBudgetLeft) => runningAtStepStart == 0 && running < maxNumSeqs;
}

/// <summary>One request at a time.</summary>
public sealed class SequentialAdmission : IAdmissionPolicy
{
    public bool MayAdmit(int runningAtStepStart, int running, int tokenBudgetLeft) => running < 1 && tokenBudgetLeft > 0;
}
