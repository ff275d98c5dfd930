namespace Loom.Silo.Engine;

/// <summary>
/// What the engine loop needs to execute a step: the real <see cref="ModelRunner"/> over a
/// <see cref="Models.LlamaModel"/>, or <see cref="SimulatedModelRunner"/>, which only takes the time
/// a cost model says a GPU would. Either way scheduling, KV blocks and sampling are the same code.
/// </summary>
public interface IModelRunner : IDisposable
{
    /// <summary>
    /// Runs the step. Returns logits [rows, vocab] for the scheduled sequences that sample, in
    /// scheduling order, valid until the next call; empty when <see cref="SamplesOnDevice"/>, where
    /// the logits stay on the device for <see cref="SampleOnDevice"/>.
    /// </summary>
    ReadOnlySpan<float> Execute(SchedulerOutput step);

    /// <summary>Whether the engine samples through <see cref="SampleOnDevice"/> rather than from Execute's logits.</summary>
    bool SamplesOnDevice { get; }

    /// <summary>Samples the last step's logits where they are (see <see cref="Loom.Kernels.SamplingBatch"/>).</summary>
    void SampleOnDevice(Loom.Kernels.SamplingBatch batch);

    /// <summary>Copies one block's KV (all layers), for a forked sample's partial last block.</summary>
    void CopyBlock(BlockCopy copy);
}
