using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// What the engine's runner drives: a model with its paged KV pool, on one device
/// (<see cref="SingleDeviceModel"/>) or split over tensor-parallel shards (<see cref="TensorParallelModel"/>).
/// Every shard shares one block layout, so block ids mean the same on each.
/// </summary>
public interface IForwardModel
{
    /// <summary>The whole (unsharded) model's config.</summary>
    ModelConfig Config { get; }

    /// <summary>The backend that holds the logits <see cref="Forward"/> returns (rank 0's under tensor parallelism).</summary>
    IBackend Backend { get; }

    /// <summary>Allocates the KV pool (each shard its share of the kv heads), replacing any earlier one.</summary>
    void AllocateKvCache(int numBlocks, int blockSize, DType dtype);

    /// <summary>Frees the KV pool; the weights stay.</summary>
    void FreeKvCache();

    /// <summary>Runs the batch; logits [NumLogitRows, vocab] on <see cref="Backend"/>, valid until the next call.</summary>
    Tensor Forward(ForwardBatch batch);
}

/// <summary>A <see cref="LlamaModel"/> on one backend with its KV pool. The model's owner disposes the model.</summary>
public sealed class SingleDeviceModel(LlamaModel model, KvCache? cache = null) : IForwardModel
{
    private KvCache? _cache = cache;

    public ModelConfig Config => model.Config;
    public IBackend Backend => model.Backend;

    public void AllocateKvCache(int numBlocks, int blockSize, DType dtype)
    {
        FreeKvCache();
        _cache = model.AllocateKvCache(numBlocks, blockSize, dtype);
    }

    public void FreeKvCache()
    {
        _cache?.Dispose();
        _cache = null;
    }

    public Tensor Forward(ForwardBatch batch) => model.Forward(batch, Cache);

    private KvCache Cache => _cache ?? throw new InvalidOperationException("the KV pool is not allocated");
}
