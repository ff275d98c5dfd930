using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Simulation;

/// <summary>When a <see cref="FaultInjectingRunner"/> makes a step throw.</summary>
public sealed record FaultPlan
{
    /// <summary>A step that runs a sequence whose prompt holds this token throws (a "poison" request); null: none.</summary>
    public int? PoisonTokenId { get; init; }

    /// <summary>Probability that any step throws (seeded, so a run repeats).</summary>
    public double StepFaultRate { get; init; }

    /// <summary>Every step throws while this returns true (a persistently sick worker); null: never.</summary>
    public Func<bool>? FailAll { get; init; }

    /// <summary>Steps (0-based, counting every Execute) that throw.</summary>
    public IReadOnlySet<long> FailSteps { get; init; } = new HashSet<long>();

    public int Seed { get; init; } = 7;

    public bool IsEmpty => PoisonTokenId is null && StepFaultRate <= 0 && FailAll is null && FailSteps.Count == 0;
}

/// <summary>The exception a <see cref="FaultInjectingRunner"/> throws: recognisable in logs and tests.</summary>
public sealed class InjectedFaultException(string message) : Exception(message);

/// <summary>
/// Wraps a runner and makes chosen steps throw before they run: the engine's fault containment,
/// the gateway's failover policy and the chaos benchmark are exercised with it (the simulated
/// backend's <c>simulated.step_fault_rate</c> and <c>simulated.poison_token_id</c> turn it on for load drills).
/// </summary>
public sealed class FaultInjectingRunner(IModelRunner inner, FaultPlan plan) : IModelRunner
{
    private readonly Random _rng = new(plan.Seed);
    private long _step;

    /// <summary>Steps made to throw so far.</summary>
    public long Injected { get; private set; }

    public ReadOnlySpan<SampleResult> Execute(SchedulerOutput step)
    {
        long n = _step++;
        string? why = plan.FailAll?.Invoke() == true ? "the worker is set to fail every step"
            : plan.FailSteps.Contains(n) ? $"step {n} is set to fail"
            : plan.StepFaultRate > 0 && _rng.NextDouble() < plan.StepFaultRate ? "a random step fault"
            : plan.PoisonTokenId is { } poison && HasPoison(step, poison) ? $"the step runs a prompt holding poison token {poison}"
            : null;
        if (why is not null)
        {
            Injected++;
            throw new InjectedFaultException($"injected fault: {why}");
        }
        return inner.Execute(step);
    }

    private static bool HasPoison(SchedulerOutput step, int poison)
    {
        foreach (var s in step.Scheduled)
        {
            var prompt = s.Sequence.Request.PromptArray;
            if (Array.IndexOf(prompt, poison) >= 0) return true;
        }
        return false;
    }

    public void Dispose() => inner.Dispose();
}
