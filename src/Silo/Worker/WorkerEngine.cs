using Loom.Silo.Simulation;
using Loom.Grains.Abstractions;
using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Configuration;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Models;
using Microsoft.Extensions.Logging;

namespace Loom.Silo.Worker;

/// <summary>Wraps the engine's model runner (tests use it to slow steps down, so a kill lands mid-stream).</summary>
public interface IModelRunnerWrapper
{
    IModelRunner Wrap(IModelRunner inner);
}

/// <summary>
/// The silo's one engine: the model (or the simulated runner) and its <see cref="EngineLoop"/>, whose
/// thread runs outside any grain turn. A silo singleton; the worker grain is a facade over it.
/// </summary>
public sealed class WorkerEngine(LoomOptions options, ILogger<WorkerEngine> log, IModelRunnerWrapper? wrapper = null) : IDisposable
{
    private readonly SemaphoreSlim _loadLock = new(1, 1);
    private IBackend? _backend;
    private LlamaModel? _model;
    private TensorParallelModel? _tensorParallel;
    private volatile EngineLoop? _engine;
    private ModelInfo? _info;
    private Loom.Silo.Structured.ConstraintCacheHandle? _constraints;

    private volatile bool _draining;

    /// <summary>Serving: loaded, not draining and not sick (the readiness probe's answer).</summary>
    public bool IsReady => _engine is { SickReason: null } && !_draining;

    /// <summary>False once only a restart helps: the engine thread died or the worker is sick (the liveness probe's answer).</summary>
    public bool IsAlive => _engine?.IsAlive ?? true;

    /// <summary>Why the worker is not ready, for /health; null when it is.</summary>
    public string? NotReadyReason => _engine is null ? "the model is not loaded yet"
        : _draining ? "draining for shutdown"
        : _engine.SickReason is { } sick ? $"unhealthy: {sick}"
        : null;

    public bool IsDraining => _draining;

    /// <summary>The engine whatever its state (null before loading): for diagnostics and tests, not for new work.</summary>
    public EngineLoop? LoadedEngine => _engine;

    /// <summary>
    /// The engine, for new work: refused while draining or sick (routers drop this worker: it stops
    /// reporting load) so callers go elsewhere.
    /// </summary>
    public EngineLoop Engine => _draining
        ? throw new WorkerUnavailableException("the worker is draining for shutdown; retry on another worker")
        : _engine is { SickReason: { } sick } ? throw new WorkerUnavailableException($"the worker is unhealthy ({sick}); retry on another worker")
        : _engine ?? throw new WorkerUnavailableException("the worker's model is not loaded");

    /// <summary>
    /// Graceful shutdown: from now on new requests and load reports are refused; waits until the
    /// requests in flight have finished or <paramref name="budget"/> is spent. Returns whether it drained.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan budget, CancellationToken cancellationToken)
    {
        _draining = true;
        if (_engine is not { } engine) return true;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var s = engine.GetStats();
            // The engine's stats miss requests submitted during its last step; open streams do not.
            if (s.Running + s.Waiting == 0 && Volatile.Read(ref _inFlight) == 0) return true;
            if (sw.Elapsed >= budget || cancellationToken.IsCancellationRequested) return false;
            try { await Task.Delay(50, cancellationToken); }
            catch (OperationCanceledException) { return false; }
        }
    }

    /// <summary>The engine's load, also while draining; null before the model is loaded.</summary>
    public WorkerStats? TryGetStats() => _engine is { } e ? WithUnadmitted(e.GetStats()) : null;

    /// <summary>What the worker computes on ("cpu", "cuda:NAME", "simulated"), and the CPU kernels' ISA.</summary>
    public (string Device, string Isa) Device { get; private set; } = ("", "");

    // Sequences of the requests whose streams are open on this worker, admitted by the engine or not.
    private int _inFlight;

    /// <summary>
    /// Counts a request's <paramref name="sequences"/> in (the worker grain brackets each stream with
    /// this and <see cref="RequestEnded"/>). With <paramref name="refuseIfFull"/> it is refused, and
    /// false returned, when they would overfill the batch (engine.max_num_seqs) of a busy worker.
    /// </summary>
    public bool TryStartRequest(int sequences, bool refuseIfFull)
    {
        int limit = options.Engine.MaxNumSeqs;
        // The worker never holds more than a batch plus engine.max_waiting sequences, so its memory and
        // every caller's wait are bounded; a request of more sequences than that would never fit at all
        // (n is validated against max_num_seqs), so one alone on an idle worker is always let in.
        long cap = (long)limit + options.Engine.MaxWaiting;
        while (true)
        {
            int now = Volatile.Read(ref _inFlight);
            if (refuseIfFull && now > 0 && now + sequences > limit) return false;
            if (now > 0 && now + sequences > cap)
                throw new WorkerQueueFullException($"the worker's queue is full ({now} sequences, engine.max_num_seqs + engine.max_waiting = {cap})");
            if (Interlocked.CompareExchange(ref _inFlight, now + sequences, now) == now) return true;
        }
    }

    public void RequestEnded(int sequences) => Interlocked.Add(ref _inFlight, -sequences);

    /// <summary>The load a router should see (refused while draining, so routers drop this worker).</summary>
    public WorkerStats GetStats() => WithUnadmitted(Engine.GetStats());

    private WorkerStats WithUnadmitted(WorkerStats s) =>
        Routing.LoadAccounting.WithUnadmitted(s with { Device = Device.Device, Isa = Device.Isa, StructuredCacheBytes = _constraints?.Bytes ?? 0 },
            Volatile.Read(ref _inFlight));

    public ModelInfo Info => _info ?? throw new WorkerUnavailableException("the worker's model is not loaded");

    /// <summary>Loads the model and starts the engine thread (once; later calls return at once).</summary>
    public async Task LoadAsync(CancellationToken cancellationToken = default)
    {
        await _loadLock.WaitAsync(cancellationToken);
        try
        {
            if (_engine is not null) return;
            // Loading reads and repacks weights for seconds: keep it off the silo's scheduler threads.
            await Task.Run(Load, cancellationToken);
        }
        finally { _loadLock.Release(); }
    }

    private void Load()
    {
        var e = options.Engine;
        var engineOptions = e;
        IModelRunner Wrap(IModelRunner r) => wrapper?.Wrap(r) ?? r;
        if (e.Backend == "simulated")
        {
            var s = options.Simulated;
            var config = SimulatedModelRunner.Config(s.VocabSize, e.MaxModelLen);
            var faults = new FaultPlan { StepFaultRate = s.StepFaultRate, PoisonTokenId = s.PoisonTokenId >= 0 ? s.PoisonTokenId : null };
            _engine = new EngineLoop(config, engineOptions, (_, _, _) =>
            {
                IModelRunner simulated = new SimulatedModelRunner(s.VocabSize, s.StepOverheadMs, s.PerTokenMs);
                return Wrap(faults.IsEmpty ? simulated : new FaultInjectingRunner(simulated, faults));
            }, log);
            _constraints = Loom.Silo.Structured.StructuredOutputs.Attach(_engine.Frontend,
                () => Loom.Silo.Structured.TokenVocabulary.ByteLevel(config.VocabSize, config.EosTokenIds), config.EosTokenIds, e.StructuredOutputCacheBytes);
            _info = new ModelInfo(options.Model.Name is { Length: > 0 } n ? n : "simulated", config.ArchitectureName, _engine.MaxModelLen,
                config.VocabSize, config.EosTokenIds, "", null);
            log.LogInformation("simulated worker: {Overhead} ms per step + {PerToken} ms per token, vocab {Vocab}", s.StepOverheadMs, s.PerTokenMs, s.VocabSize);
            Device = ("simulated", "");
            return;
        }
        var dir = options.Model.Path is { Length: > 0 } p ? p : DemoModelFiles.EnsureCreated();
        IForwardModel model = e.TensorParallelSize > 1 ? LoadTensorParallel(dir, e.TensorParallelSize) : LoadSingle(dir);
        Device = model.Backend is Loom.Kernels.Cpu.CpuBackend cpu ? ("cpu", Loom.Kernels.Cpu.Isa.CpuIsaSelector.Name(cpu.Isa)) : (model.Backend.Name, "");
        var sampler = ModelRunner.DeviceSamplerFor(model.Backend, engineOptions.Sampling);
        if (model.Backend is Loom.Kernels.Cuda.CudaBackend cuda)
        {
            // The GPU pool stores bf16 (the kernels read bf16 K/V), whatever the checkpoint's dtype.
            if (engineOptions.KvCacheDType == "auto") engineOptions = engineOptions with { KvCacheDType = "bf16" };
            engineOptions = engineOptions with { NumBlocks = e.NumBlocks ?? SizeGpuKvPool(model, cuda, sampler, engineOptions, e.GpuMemoryUtilization, e.TensorParallelSize) };
        }
        var kvDType = engineOptions.ResolveKvCacheDType(model.Config);
        _engine = new EngineLoop(model.Config, engineOptions, (blocks, kv, maxLen) =>
        {
            model.AllocateKvCache(blocks, e.BlockSize, kvDType);
            return Wrap(new ModelRunner(model, e.BlockSize, kv, maxLen, sampler));
        }, log);
        var name = options.Model.Name is { Length: > 0 } name0 ? name0
            : options.Model.Path.Length == 0 ? "demo" : Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));
        var tokenizer = GgufModel.TokenizerFiles(dir);
        _info = new ModelInfo(name, model.Config.ArchitectureName, _engine.MaxModelLen, model.Config.VocabSize, model.Config.EosTokenIds,
            tokenizer.Json, tokenizer.Config);
        var tokenizerJson = _info.TokenizerJson;
        _constraints = Loom.Silo.Structured.StructuredOutputs.Attach(_engine.Frontend,
            () => Loom.Silo.Structured.StructuredOutputs.Vocabulary(tokenizerJson, model.Config.VocabSize, model.Config.EosTokenIds), model.Config.EosTokenIds,
            e.StructuredOutputCacheBytes);
        log.LogInformation("worker loaded {Name} ({Arch}) from {Dir} on {Backend}{Tp}; sampling on the {Where}", name, model.Config.ArchitectureName, dir,
            model.Backend.Name, e.TensorParallelSize > 1 ? $" x{e.TensorParallelSize} (tensor parallel)" : "", sampler is null ? "host" : "device");
    }

    private IForwardModel LoadSingle(string dir)
    {
        try
        {
            var (backend, why) = BackendFactory.Create(options.Device, options.Engine.Threads, cpuIsa: options.Engine.CpuIsa);
            _backend = backend;
            log.LogInformation("{Why}", why);
        }
        catch (BackendUnavailableException ex) { throw new LoomConfigException("device", ex.Message); }
        catch (Loom.Kernels.Cpu.Isa.CpuIsaUnavailableException ex) { throw new LoomConfigException("engine.cpu_isa", ex.Message); }
        _model = LlamaModel.Load(dir, _backend);
        return new SingleDeviceModel(_model);
    }

    /// <summary>One engine over <paramref name="worldSize"/> shards in this process (vLLM's tensor_parallel_size on one node).</summary>
    private IForwardModel LoadTensorParallel(string dir, int worldSize)
    {
        IBackend[] backends;
        Loom.Kernels.Collectives.ICommunicator[] comms;
        try
        {
            (backends, comms, var why) = BackendFactory.CreateGroup(options.Device, options.Engine.Threads, worldSize, cpuIsa: options.Engine.CpuIsa);
            log.LogInformation("{Why}", why);
        }
        catch (BackendUnavailableException ex) { throw new LoomConfigException("device", ex.Message); }
        catch (Loom.Kernels.Cpu.Isa.CpuIsaUnavailableException ex) { throw new LoomConfigException("engine.cpu_isa", ex.Message); }
        try { _tensorParallel = TensorParallelModel.Load(dir, backends, comms); }
        catch (ArgumentException ex) when (ex.Message.StartsWith("tensor_parallel_size", StringComparison.Ordinal))
        {
            throw new LoomConfigException("engine.tensor_parallel_size", ex.Message);
        }
        return _tensorParallel;
    }

    /// <summary>
    /// vLLM's rule on a GPU: run one forward at the largest batch the scheduler can form
    /// (max_num_batched_tokens over max_num_seqs sequences, so the activation workspace, the logits
    /// rows and the device sampler's scratch all reach their peak), then give the KV pool what
    /// cuMemGetInfo says is left of total × gpu_memory_utilization. Under tensor parallelism each
    /// rank holds 1/tp of the kv heads and rank 0 stands for all (the shards are the same size).
    /// </summary>
    private int SizeGpuKvPool(IForwardModel model, Loom.Kernels.Cuda.CudaBackend cuda, IDeviceSampler? sampler, EngineOptions o, double utilization, int tp)
    {
        var c = model.Config;
        int maxLen = o.MaxModelLen > 0 ? Math.Min(o.MaxModelLen, c.MaxPositionEmbeddings) : c.MaxPositionEmbeddings;
        int tokens = Math.Max(1, Math.Min(o.MaxNumBatchedTokens, maxLen - 1));
        int seqs = Math.Min(o.MaxNumSeqs, tokens);
        var batch = ForwardBatch.Profiling(tokens, seqs, o.BlockSize);
        model.AllocateKvCache(batch.Attention.NumSeqs * batch.Attention.MaxBlocksPerSeq, o.BlockSize, DType.BF16);
        try
        {
            var logits = model.Forward(batch);
            if (sampler is not null)
            {
                var sampling = new SamplingBatch();
                for (int s = 0; s < seqs; s++) sampling.AddSlot(s, 1f, 50, 0.9f, 0f, 0.5, SamplingParams.MaxLogprobs);
                sampler.Sample(logits, sampling);
            }
        }
        finally { model.FreeKvCache(); }
        cuda.Synchronize();
        var (free, total) = cuda.MemoryInfo();
        var dtype = o.ResolveKvCacheDType(c);
        var spec = new KvCacheSpec(c.NumLayers, 1, o.BlockSize, c.NumKvHeads / Math.Max(1, tp), c.HeadDim, dtype);
        var plan = Loom.Kernels.Cuda.KvPoolSizing.Plan(free, total, utilization, spec.BytesPerBlock, o.BlockSize, maxLen);
        log.LogInformation("{Plan} (after a profiling forward of {Tokens} tokens in {Seqs} sequences; {Free} MiB free of {Total} MiB)",
            plan, tokens, seqs, free >> 20, total >> 20);
        return plan.NumBlocks;
    }


    public void Dispose()
    {
        _engine?.Dispose();
        _model?.Dispose();
        _tensorParallel?.Dispose();
        _backend?.Dispose();
        _loadLock.Dispose();
    }
}
