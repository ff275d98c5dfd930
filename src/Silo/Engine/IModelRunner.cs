using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>
/// What the engine loop needs to execute a step: the real <see cref="ModelRunner"/> over a
/// <see cref="Models.IForwardModel"/>, or <see cref="Simulation.SimulatedModelRunner"/>, which only takes the
/// time a cost model says a GPU would. Either way scheduling, KV blocks and the sampling algorithm
/// are the same code; where the sampling runs (host or device) is the runner's business.
/// </summary>
public interface IModelRunner : IDisposable
{
    /// <summary>
    /// Runs the step and samples the next token of every scheduled sequence that samples (see
    /// <see cref="ScheduledSequence.Samples"/>), in scheduling order. Valid until the next call.
    /// </summary>
    ReadOnlySpan<SampleResult> Execute(SchedulerOutput step);
}
