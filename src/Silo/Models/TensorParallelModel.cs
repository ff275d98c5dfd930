using Loom.Kernels;
using Loom.Kernels.Collectives;

namespace Loom.Silo.Models;

/// <summary>
/// A model split over <c>worldSize</c> tensor-parallel shards, each a <see cref="LlamaModel"/> on its
/// own backend with its own KV pool (its share of the kv heads), all sharing one block layout.
/// A forward drives every shard on its own thread in lock-step (the all-reduces are barriers) and
/// returns rank 0's logits, which every rank holds identically after the final all-reduce.
/// </summary>
public sealed class TensorParallelModel : IDisposable
{
    private readonly LlamaModel[] _shards;
    private readonly IBackend[] _backends;
    private readonly ICommunicator[] _comms;
    private readonly KvCache[] _caches;

    private TensorParallelModel(ModelConfig full, LlamaModel[] shards, IBackend[] backends, ICommunicator[] comms, KvCache[] caches)
    {
        Config = full;
        _shards = shards;
        _backends = backends;
        _comms = comms;
        _caches = caches;
    }

    /// <summary>The unsharded model's config.</summary>
    public ModelConfig Config { get; }

    public int WorldSize => _shards.Length;

    /// <summary>Loads <paramref name="modelDir"/> as <paramref name="worldSize"/> shards; <paramref name="backend"/> makes each rank's backend.</summary>
    public static TensorParallelModel Load(string modelDir, int worldSize, Func<int, IBackend> backend, int numBlocks, int blockSize, DType kvDType = DType.F32,
        Func<int, ICommunicator[]>? communicators = null)
    {
        var config = ModelConfig.Load(modelDir);
        var shardConfig = TensorParallel.ShardConfig(config, worldSize);
        var comms = (communicators ?? InProcessCommunicator.CreateGroup)(worldSize);
        var shards = new LlamaModel[worldSize];
        var backends = new IBackend[worldSize];
        var caches = new KvCache[worldSize];
        using var weights = ModelWeights.Open(modelDir);
        try
        {
            for (int r = 0; r < worldSize; r++)
            {
                backends[r] = backend(r);
                using var slice = new ShardedWeights(weights, config, r, worldSize);
                shards[r] = LlamaModel.Load(shardConfig, slice, backends[r], worldSize > 1 ? comms[r] : null);
                caches[r] = shards[r].AllocateKvCache(numBlocks, blockSize, kvDType);
            }
        }
        catch
        {
            foreach (var c in caches) c?.Dispose();
            foreach (var s in shards) s?.Dispose();
            foreach (var b in backends) b?.Dispose();
            throw;
        }
        return new TensorParallelModel(config, shards, backends, comms, caches);
    }

    /// <summary>Runs the batch on every shard at once and returns the logits rows (host copy, [NumLogitRows, vocab]).</summary>
    public float[] Forward(ForwardBatch batch)
    {
        var logits = new float[(long)batch.NumLogitRows * Config.VocabSize];
        var errors = new Exception?[WorldSize];
        var threads = new Thread[WorldSize];
        for (int r = 0; r < WorldSize; r++)
        {
            int rank = r;
            threads[r] = new Thread(() =>
            {
                try
                {
                    var t = _shards[rank].Forward(batch, _caches[rank]);
                    if (rank == 0 && batch.NumLogitRows > 0) _backends[0].CopyToHost(t, logits);
                }
                catch (Exception e) { errors[rank] = e; }
            }) { IsBackground = true, Name = $"loom-tp-{rank}" };
            threads[r].Start();
        }
        foreach (var t in threads) t.Join();
        if (errors.FirstOrDefault(e => e is not null) is { } first) throw new AggregateException("a tensor-parallel shard failed", first);
        return logits;
    }

    public void Dispose()
    {
        foreach (var c in _caches) c.Dispose();
        foreach (var s in _shards) s.Dispose();
        foreach (var b in _backends) b.Dispose();
        foreach (var c in _comms) c.Dispose();
    }
}
