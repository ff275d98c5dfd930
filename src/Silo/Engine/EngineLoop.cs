using Loom.Grains.Abstractions;
using Loom.Kernels;
using Loom.Silo.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Loom.Silo.Engine;

/// <summary>
/// One worker's engine: a dedicated thread that steps while work exists and sleeps otherwise. A
/// step is schedule → execute (forward and sampling) → update (advance, cache, stop, free) → emit,
/// as vLLM v1's. Callers on any thread Submit and Abort through the <see cref="EngineFrontend"/>.
/// A step that throws fails only the requests it ran; repeated failures, or a device error, make
/// the worker sick.
/// </summary>
public sealed class EngineLoop : IDisposable
{
    private readonly ILogger _log;
    private readonly Scheduler _scheduler;
    private readonly IModelRunner _runner;
    private readonly EngineFrontend _front;
    private readonly List<Emitted> _emitted = [];
    private readonly Thread? _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly int[] _eos;
    private long _nextSeqId, _steps, _stepTokens, _forwardTicks, _failedSteps, _wasteSteps;
    private double _wasteSum;
    private int _consecutiveFailures;
    private volatile WorkerStats _stats;

    public EngineLoop(LlamaModel model, EngineOptions options, ILogger? log = null, bool startThread = true)
        : this(model.Config, options, (numBlocks, kv, maxModelLen) =>
            new ModelRunner(model, model.AllocateKvCache(numBlocks, options.BlockSize, options.ResolveKvCacheDType(model.Config)), kv, maxModelLen,
                ModelRunner.DeviceSamplerFor(model.Backend, options.Sampling)), log, startThread)
    {
    }

    /// <summary>
    /// An engine over any <see cref="IModelRunner"/>: <paramref name="config"/> gives the vocabulary,
    /// EOS ids, context length and the KV block size in bytes (which sizes the pool);
    /// <paramref name="createRunner"/>(numBlocks, kv, maxModelLen) builds the runner once the pool is sized.
    /// <paramref name="createKv"/> replaces the paged KV manager (the benchmark's contiguous baseline).
    /// </summary>
    public EngineLoop(ModelConfig config, EngineOptions options, Func<int, IKvCacheManager, int, IModelRunner> createRunner,
        ILogger? log = null, bool startThread = true, Func<int, int, IKvCacheManager>? createKv = null)
    {
        if (options.Validate() is { } bad) throw new EngineRequestException(bad.Param, bad.Message);
        _log = log ?? NullLogger.Instance;
        MaxModelLen = options.MaxModelLen > 0 ? Math.Min(options.MaxModelLen, config.MaxPositionEmbeddings) : config.MaxPositionEmbeddings;
        Options = options with { MaxModelLen = MaxModelLen };
        var spec = new KvCacheSpec(config.NumLayers, 1, options.BlockSize, config.NumKvHeads, config.HeadDim, options.ResolveKvCacheDType(config));
        NumBlocks = options.NumBlocks ?? (int)Math.Min(int.MaxValue, options.KvCacheBytes / spec.BytesPerBlock);
        if (NumBlocks < 1) throw new EngineRequestException("kv_cache_bytes", $"a KV budget of {options.KvCacheBytes} bytes holds no {spec.BytesPerBlock}-byte block");
        KvCache = createKv?.Invoke(NumBlocks, MaxModelLen) ?? new KvCacheManager(NumBlocks, options.BlockSize, options.EnablePrefixCaching);
        _scheduler = new Scheduler(Options, KvCache);
        _runner = createRunner(NumBlocks, KvCache, MaxModelLen);
        _eos = [.. config.EosTokenIds];
        _front = new EngineFrontend(config, Options, NumBlocks, _eos);
        _stats = Snapshot();
        _log.LogInformation("KV cache: {Blocks} blocks x {BlockSize} tokens ({MiB:F1} MiB); max concurrency for {MaxLen}-token requests: {Conc:F2}x",
            NumBlocks, options.BlockSize, NumBlocks * spec.BytesPerBlock / 1048576.0, MaxModelLen, (double)NumBlocks * options.BlockSize / MaxModelLen);
        if (!startThread) return;
        _thread = new Thread(Run) { IsBackground = true, Name = "loom-engine" };
        _thread.Start();
    }

    public EngineOptions Options { get; }
    public int MaxModelLen { get; }
    public int NumBlocks { get; }
    public IKvCacheManager KvCache { get; }
    public long Preemptions => _scheduler.Preemptions;
    public int PeakRunning => _scheduler.PeakRunning;
    public string? SickReason => _front.SickReason;

    /// <summary>False once only a restart brings the worker back: the engine thread died or it is sick (the liveness answer).</summary>
    public bool IsAlive => !_front.Stopped && _front.SickReason is null;

    public long FailedSteps => Interlocked.Read(ref _failedSteps);

    /// <summary>Steps run, the tokens they carried, and the seconds spent executing them (forward and sampling).</summary>
    public (long Steps, long Tokens, double ExecuteSeconds) StepTotals => (_steps, _stepTokens, _forwardTicks / (double)System.Diagnostics.Stopwatch.Frequency);

    /// <summary>Reserved-but-unused KV slots as a fraction of reserved ones, averaged over the steps run so far.</summary>
    public double KvWasteFraction => _wasteSteps == 0 ? 0 : _wasteSum / _wasteSteps;

    public IAsyncEnumerable<TokenDelta> Submit(GenerationRequest request, CancellationToken cancellationToken = default) => _front.Submit(request, cancellationToken);

    public Task AbortAsync(string requestId)
    {
        var done = _front.AbortAsync(requestId);
        if (_thread is null) Step();
        return done;
    }

    public WorkerStats GetStats() => _stats;

    private WorkerStats Snapshot()
    {
        var k = KvCache.Stats;
        return new WorkerStats(_scheduler.NumRunning, _scheduler.NumWaiting, k.TotalBlocks, k.FreeBlocks, k.UsedBlocks, k.CachedFreeBlocks,
            k.Usage, k.PrefixQueries, k.PrefixHits, _scheduler.Preemptions, _scheduler.PromptTokens, _scheduler.GenerationTokens, Options.MaxNumSeqs);
    }

    private void Run()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
                if (!Step()) _front.Wake.Wait(_stop.Token);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e)
        {
            // A failure outside a step is a bug in the loop itself: nothing would read the queues
            // again, so the worker says so (liveness) rather than accept work that would hang.
            _log.LogCritical(e, "engine thread died; failing every request in flight over to other workers");
            _front.Stop($"the engine thread died ({e.GetType().Name})");
        }
    }

    /// <summary>One engine iteration. Returns false when there was nothing to do.</summary>
    public bool Step()
    {
        Intake();
        if (!_scheduler.HasWork) { _stats = Snapshot(); return false; }
        var step = _scheduler.Schedule();
        if (step.Scheduled.Count > 0)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                var sampled = _runner.Execute(step);
                _forwardTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
                if (KvCache.Stats is { ReservedSlots: > 0 } k) { _wasteSum += k.KvWaste; _wasteSteps++; }
                _scheduler.UpdateFromOutput(step, sampled, _emitted);
                Emit();
                _consecutiveFailures = 0;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                FailStep(step, e);
            }
            _steps++;
            _stepTokens += step.NumTokens;
        }
        else if (_scheduler.NumRunning == 0 && _scheduler.PeekWaiting() is { IsHeld: false } stuck)
        {
            // Nothing runs and the head of the queue still does not fit: fail it rather than spin.
            Retire(stuck.Request, new EngineRequestException("prompt", $"the request cannot be placed in a KV pool of {NumBlocks} blocks"));
        }
        _stats = Snapshot();
        return true;
    }

    /// <summary>Aborts first (their blocks free at once), then new requests: one sequence per sample.</summary>
    private void Intake()
    {
        while (_front.TryTakeAbort(out var id, out var done))
        {
            if (_front.Find(id) is { } request)
            {
                foreach (var seq in request.Sequences)
                    if (seq.Status != SequenceStatus.Finished)
                        request.Emit(new TokenDelta(seq.Index, -1, null, null, FinishReason.Abort, seq.PromptLength, seq.OutputLength));
                Retire(request, null);
            }
            done.TrySetResult();
        }
        while (_front.TryTakeSubmission(out var state))
        {
            if (_front.SickReason is { } sick) { Retire(state, new WorkerUnavailableException($"the worker is unhealthy ({sick}); retry on another worker")); continue; }
            if (state.AbortRequested) { Retire(state, null); continue; }
            var p = state.Request.Sampling;
            for (int i = 0; i < p.N; i++)
            {
                ulong seed = SamplingState.DeriveSeed(p, i);
                var sampling = state.Request.ResumeTokenIds is { Count: > 0 } resumed
                    ? SamplingState.Resume(p, state.PromptArray, resumed as int[] ?? [.. resumed], _eos, seed, i, state.StopIds)
                    : SamplingState.Create(p, state.PromptArray, _eos, i, seed, state.StopIds);
                var seq = new Sequence(_nextSeqId++, state, i, sampling);
                state.Sequences.Add(seq);
                _scheduler.AddWaiting(seq);
            }
        }
    }

    private void Emit()
    {
        foreach (var (seq, r, finish) in _emitted)
        {
            var request = seq.Request;
            request.Emit(new TokenDelta(seq.Index, r.Token, r.Logprob, r.TopLogprobs, finish, seq.PromptLength, seq.OutputLength));
            if (finish is null) continue;
            if (++request.FinishedSequences == request.Request.Sampling.N) _front.Close(request);
        }
    }

    /// <summary>Ends a request: frees every unfinished sequence's blocks and closes its stream (with <paramref name="error"/>).</summary>
    private void Retire(RequestState request, Exception? error)
    {
        foreach (var seq in request.Sequences)
            if (seq.Status != SequenceStatus.Finished) _scheduler.Finish(seq);
        _front.Close(request, error);
    }

    /// <summary>
    /// A step threw: the requests it ran fail (their blocks return to the pool; their partial KV of
    /// this step never reached the prefix cache), the rest go on. Repeated failures, or a device
    /// error, make the worker sick: it refuses new work and fails over what it holds.
    /// </summary>
    private void FailStep(SchedulerOutput step, Exception e)
    {
        Interlocked.Increment(ref _failedSteps);
        var failed = new HashSet<RequestState>(step.Scheduled.Select(s => s.Sequence.Request), ReferenceEqualityComparer.Instance);
        _log.LogError(e, "engine step failed; failing its {Count} request(s) ({Failures} failed step(s) in a row)", failed.Count, _consecutiveFailures + 1);
        var error = new GenerationStepFailedException("the engine step running this request failed");
        foreach (var request in failed) Retire(request, error);
        string? sick = IsDeviceError(e) ? $"device error: {e.GetType().Name}"
            : ++_consecutiveFailures >= Options.MaxConsecutiveStepFailures ? $"{_consecutiveFailures} engine steps in a row failed" : null;
        if (sick is null) return;
        _front.SickReason = sick;
        _log.LogCritical("worker is unhealthy: {Reason}; failing over its {Count} request(s) and refusing new ones", sick, _front.InFlight);
        var unavailable = new WorkerUnavailableException($"the worker became unhealthy ({sick}); retry on another worker");
        while (_front.TryTakeSubmission(out var queued)) Retire(queued, unavailable);
        foreach (var request in _front.All()) Retire(request, unavailable);
    }

    /// <summary>A CUDA error leaves the context unusable: no later step can be trusted.</summary>
    private static bool IsDeviceError(Exception e) =>
        e is Loom.Kernels.Cuda.Interop.CudaException or Loom.Kernels.Cuda.Interop.CublasException or Loom.Kernels.Collectives.NcclException
        || e.InnerException is { } inner && IsDeviceError(inner);

    public void Dispose()
    {
        _stop.Cancel();
        _thread?.Join();
        foreach (var r in _front.All()) _front.Close(r, new ObjectDisposedException(nameof(EngineLoop)));
        _runner.Dispose();
        _front.Wake.Dispose();
        _stop.Dispose();
    }
}
