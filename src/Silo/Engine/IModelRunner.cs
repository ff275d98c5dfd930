namespace Loom.Silo.Engine;

/// <summary>
/// What the engine loop needs to execute a step: the real <see cref="ModelRunner"/> over a
/// <see cref="Models.LlamaModel"/>, or <see cref="SimulatedModelRunner"/>, which only takes the time
/// a cost model says a GPU would. Either way scheduling, KV blocks and sampling are the same code.
/// </summary>
public interface IModelRunner : IDisposable
{
    /// <summary>Logits [rows, vocab] for the scheduled sequences that sample, in scheduling order; valid until the next call.</summary>
    ReadOnlySpan<float> Execute(SchedulerOutput step);

    /// <summary>Copies one block's KV (all layers), for a forked sample's partial last block.</summary>
    void CopyBlock(BlockCopy copy);
}
