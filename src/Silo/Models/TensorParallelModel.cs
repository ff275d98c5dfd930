using Loom.Kernels;
using Loom.Kernels.Collectives;

namespace Loom.Silo.Models;

/// <summary>
/// A model split over <c>worldSize</c> tensor-parallel shards, each a <see cref="LlamaModel"/> on its
/// own backend with its own KV pool (its share of the kv heads), all sharing one block layout.
/// Each rank has one long-lived thread (NCCL wants one thread per device); a forward hands the
/// batch to every rank, which run in lock-step (the all-reduces are barriers), and returns rank 0's
/// logits, which every rank holds identically after the final all-reduce.
/// </summary>
public sealed class TensorParallelModel : IForwardModel, IDisposable
{
    private readonly LlamaModel[] _shards;
    private readonly IBackend[] _backends;
    private readonly ICommunicator[] _comms;
    private readonly KvCache?[] _caches;
    private readonly RankThread[] _ranks;
    private readonly Tensor?[] _outputs;
    private readonly Action[] _forwards;
    private ForwardBatch? _batch;
    private bool _failed;

    private TensorParallelModel(ModelConfig full, LlamaModel[] shards, IBackend[] backends, ICommunicator[] comms)
    {
        Config = full;
        _shards = shards;
        _backends = backends;
        _comms = comms;
        _caches = new KvCache?[shards.Length];
        _outputs = new Tensor?[shards.Length];
        _ranks = [.. Enumerable.Range(0, shards.Length).Select(r => new RankThread(r))];
        // One delegate per rank for the model's life: a step posts these, it allocates none.
        _forwards = [.. Enumerable.Range(0, shards.Length).Select(r => (Action)(() => ForwardRank(r)))];
    }

    /// <summary>The unsharded model's config.</summary>
    public ModelConfig Config { get; }

    public int WorldSize => _shards.Length;

    public IBackend Backend => _backends[0];

    /// <summary>
    /// Loads <paramref name="modelDir"/> as one shard per backend; <paramref name="communicators"/> are
    /// the ranks of one group, in rank order. Takes ownership of both (disposed with the model, or on failure).
    /// </summary>
    public static TensorParallelModel Load(string modelDir, IBackend[] backends, ICommunicator[] communicators)
    {
        int world = backends.Length;
        var shards = new LlamaModel[world];
        try
        {
            if (communicators.Length != world) throw new ArgumentException($"{world} backends but {communicators.Length} communicators");
            // A GGUF model is sharded from bf16: quantized blocks do not split along K.
            GgufFile? gguf = null;
            ModelConfig config;
            IWeights weights;
            if (GgufModel.Resolve(modelDir) is { } ggufPath)
            {
                (gguf, config, var gw) = GgufModel.Open(ggufPath, dequantizeToBf16: true);
                weights = gw;
            }
            else
            {
                config = ModelConfig.Load(modelDir);
                weights = SeededWeights.TryOpen(modelDir, config) ?? (IWeights)ModelWeights.Open(modelDir);
            }

            using var _file = gguf;
            using var _weights = (IDisposable)weights;
            var shardConfig = TensorParallel.ShardConfig(config, world);
            for (int r = 0; r < world; r++)
            {
                using var slice = new ShardedWeights(weights, config, r, world);
                shards[r] = LlamaModel.Load(shardConfig, slice, backends[r], world > 1 ? communicators[r] : null);
            }
            return new TensorParallelModel(config, shards, backends, communicators);
        }
        catch
        {
            foreach (var s in shards) s?.Dispose();
            // Communicators before backends: see Dispose.
            DestroyCommunicators(communicators);
            foreach (var b in backends) b.Dispose();
            throw;
        }
    }

    /// <summary>Loads <paramref name="worldSize"/> shards on backends made by <paramref name="backend"/>(rank), with a KV pool.</summary>
    public static TensorParallelModel Load(string modelDir, int worldSize, Func<int, IBackend> backend, int numBlocks, int blockSize, DType kvDType = DType.F32,
        Func<int, ICommunicator[]>? communicators = null)
    {
        var comms = (communicators ?? InProcessCommunicator.CreateGroup)(worldSize);
        var backends = new IBackend[worldSize];
        try
        {
            for (int r = 0; r < worldSize; r++) backends[r] = backend(r);
        }
        catch
        {
            DestroyCommunicators(comms);
            foreach (var b in backends) b?.Dispose();
            throw;
        }
        var model = Load(modelDir, backends, comms);
        try { model.AllocateKvCache(numBlocks, blockSize, kvDType); }
        catch { model.Dispose(); throw; }
        return model;
    }

    public void AllocateKvCache(int numBlocks, int blockSize, DType dtype)
    {
        FreeKvCache();
        for (int r = 0; r < WorldSize; r++) _caches[r] = _shards[r].AllocateKvCache(numBlocks, blockSize, dtype);
    }

    public void FreeKvCache()
    {
        for (int r = 0; r < WorldSize; r++)
        {
            _caches[r]?.Dispose();
            _caches[r] = null;
        }
    }

    /// <summary>Runs the batch on every shard at once; rank 0's logits [NumLogitRows, vocab], valid until the next call.</summary>
    public Tensor Forward(ForwardBatch batch)
    {
        // A rank that failed mid-forward may have left its partners inside a collective: the group
        // is not reusable, as with NCCL after an error. The worker reports the failure and restarts.
        if (_failed) throw new InvalidOperationException("a tensor-parallel shard failed earlier; the group must be reloaded");
        if (Array.IndexOf(_caches, null) >= 0) throw new InvalidOperationException("the KV pool is not allocated");
        _batch = batch;
        for (int r = 0; r < WorldSize; r++) _ranks[r].Post(_forwards[r]);
        Exception? first = null;
        foreach (var rank in _ranks)
            if (rank.Wait() is { } e && (first is null || first is Loom.Kernels.Collectives.CommunicatorAbortedException)) first = e;
        _batch = null;
        if (first is not null)
        {
            _failed = true;
            throw new AggregateException("a tensor-parallel shard failed", first);
        }
        return _outputs[0]!;
    }

    private void ForwardRank(int rank)
    {
        try { _outputs[rank] = _shards[rank].Forward(_batch!, _caches[rank]!); }
        catch
        {
            // The partners may be waiting for this rank inside an all-reduce: release them now.
            foreach (var c in _comms) c.Abort();
            throw;
        }
    }

    /// <summary>A host copy of <see cref="Forward"/>'s logits.</summary>
    public float[] ForwardToHost(ForwardBatch batch)
    {
        var t = Forward(batch);
        var host = new float[(long)batch.NumLogitRows * Config.VocabSize];
        if (host.Length > 0) _backends[0].CopyToHost(t, host);
        return host;
    }

    /// <summary>
    /// Tears down in dependency order. The communicators go first, while every backend's context,
    /// stream and buffers still exist: ncclCommDestroy frees NCCL's buffers on those devices and
    /// joins its proxy threads, and a backend's Dispose releases the primary context they live in.
    /// The ranks destroy their communicators all at once, each on its own thread, because newer NCCL
    /// versions may synchronise the ranks of a node inside ncclCommDestroy.
    /// </summary>
    public void Dispose()
    {
        foreach (var t in _ranks) t.Dispose();
        DestroyCommunicators(_comms);
        FreeKvCache();
        foreach (var s in _shards) s.Dispose();
        foreach (var b in _backends) b.Dispose();
    }

    /// <summary>Disposes every communicator, each on its own thread at once (see <see cref="Dispose"/>); errors are dropped, as in any Dispose.</summary>
    private static void DestroyCommunicators(ICommunicator[] comms)
    {
        if (comms.Length <= 1)
        {
            foreach (var c in comms) c.Dispose();
            return;
        }
        var threads = comms.Select(c => new Thread(() => { try { c.Dispose(); } catch (Exception) { } }) { IsBackground = true, Name = $"loom-tp-destroy-{c.Rank}" }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
    }

    /// <summary>One rank's thread: runs each posted action and reports its failure, if any.</summary>
    private sealed class RankThread : IDisposable
    {
        private readonly Thread _thread;
        private readonly SemaphoreSlim _go = new(0);
        private readonly SemaphoreSlim _done = new(0);
        private Action? _work;
        private Exception? _error;
        private volatile bool _stop;

        public RankThread(int rank)
        {
            _thread = new Thread(Loop) { IsBackground = true, Name = $"loom-tp-{rank}" };
            _thread.Start();
        }

        public void Post(Action work)
        {
            _work = work;
            _error = null;
            _go.Release();
        }

        public Exception? Wait()
        {
            _done.Wait();
            return _error;
        }

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                if (_stop) return;
                try { _work!(); }
                catch (Exception e) { _error = e; }
                _work = null;
                _done.Release();
            }
        }

        public void Dispose()
        {
            _stop = true;
            _go.Release();
            _thread.Join();
            _go.Dispose();
            _done.Dispose();
        }
    }
}
