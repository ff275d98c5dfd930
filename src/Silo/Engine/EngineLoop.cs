using System.Diagnostics;
using Loom.Grains.Abstractions;
using Loom.Silo.Blocks;
using Loom.Silo.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Loom.Silo.Engine;

/// <summary>
/// One worker's engine: a thread that steps while work exists and sleeps otherwise. A step is
/// schedule → execute (forward and sampling) → update (advance, cache, stop, free) → emit, as vLLM
/// v1's. Callers Submit and Abort through the <see cref="EngineFrontend"/> from any thread.
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
    private long _nextSeqId, _steps, _stepTokens, _forwardTicks, _failedSteps, _wasteSteps, _consecutiveFailures;
    private double _wasteSum;
    private volatile WorkerStats _stats;

    public EngineLoop(LlamaModel model, EngineOptions options, ILogger? log = null, bool startThread = true,
        IAdmissionPolicy? admission = null, Func<int, int, IKvCacheManager>? createKv = null)
        : this(model.Config, options, (numBlocks, kv, maxModelLen) =>
            new ModelRunner(model, model.AllocateKvCache(numBlocks, options.BlockSize, options.ResolveKvCacheDType(model.Config)), kv, maxModelLen,
                ModelRunner.DeviceSamplerFor(model.Backend, options.Sampling)), log, startThread, createKv, admission)
    {
    }

    /// <summary>
    /// An engine over any <see cref="IModelRunner"/>: <paramref name="config"/> gives the vocabulary,
    /// EOS ids, context length and the KV block size in bytes (which sizes the pool);
    /// <paramref name="createRunner"/>(numBlocks, kv, maxModelLen) builds the runner once the pool is sized.
    /// <paramref name="createKv"/>(numBlocks, maxModelLen) and <paramref name="admission"/> replace the paged KV manager and
    /// continuous batching (the benchmark's baselines).
    /// </summary>
    public EngineLoop(ModelConfig config, EngineOptions options, Func<int, IKvCacheManager, int, IModelRunner> createRunner,
        ILogger? log = null, bool startThread = true, Func<int, int, IKvCacheManager>? createKv = null, IAdmissionPolicy? admission = null)
    {
        if (options.Validate() is { } bad) throw new EngineRequestException(bad.Key, $"{bad.Key} {bad.Message}");
        _log = log ?? NullLogger.Instance;
        MaxModelLen = options.MaxModelLen > 0 ? Math.Min(options.MaxModelLen, config.MaxPositionEmbeddings) : config.MaxPositionEmbeddings;
        Options = options with { MaxModelLen = MaxModelLen };
        long bytesPerBlock = Options.BytesPerBlock(config);
        NumBlocks = options.NumBlocks ?? (int)Math.Min(int.MaxValue, options.KvCacheBytes / bytesPerBlock);
        if (NumBlocks < 1) throw new EngineRequestException("kv_cache_bytes", $"a KV budget of {options.KvCacheBytes} bytes holds no {bytesPerBlock}-byte block");
        KvCache = createKv?.Invoke(NumBlocks, MaxModelLen) ?? new KvCacheManager(NumBlocks, options.BlockSize, options.EnablePrefixCaching);
        _scheduler = new Scheduler(Options, KvCache, admission);
        _runner = createRunner(NumBlocks, KvCache, MaxModelLen);
        _front = new EngineFrontend(config, Options, NumBlocks, [.. config.EosTokenIds]);
        _stats = Snapshot();
        _log.LogInformation("KV cache: {Blocks} blocks x {BlockSize} tokens ({MiB:F1} MiB); max concurrency for {MaxLen}-token requests: {Conc:F2}x",
            NumBlocks, options.BlockSize, NumBlocks * bytesPerBlock / 1048576.0, MaxModelLen, (double)NumBlocks * options.BlockSize / MaxModelLen);
        if (!startThread) return;
        (_thread = new Thread(Run) { IsBackground = true, Name = "loom-engine" }).Start();
    }

    public EngineOptions Options { get; }
    public int MaxModelLen { get; }
    public int NumBlocks { get; }
    public IKvCacheManager KvCache { get; }
    public long Preemptions => _scheduler.Preemptions;
    public int PeakRunning => _scheduler.PeakRunning;
    public string? SickReason => _front.SickReason;
    public long FailedSteps => Interlocked.Read(ref _failedSteps);
    public EngineFrontend Frontend => _front;

    /// <summary>False once only a restart brings the worker back: the engine thread died or it is sick (the liveness answer).</summary>
    public bool IsAlive => !_front.Stopped && _front.SickReason is null;

    /// <summary>Steps run, the tokens they carried, the seconds spent executing them (forward and sampling); the mean KV waste.</summary>
    public (long Steps, long Tokens, double ExecuteSeconds) StepTotals => (_steps, _stepTokens, _forwardTicks / (double)Stopwatch.Frequency);
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
        return new(_scheduler.NumRunning, _scheduler.NumWaiting, k.TotalBlocks, k.FreeBlocks, k.UsedBlocks, k.CachedFreeBlocks, k.Usage,
            k.PrefixQueries, k.PrefixHits, _scheduler.Preemptions, _scheduler.PromptTokens, _scheduler.GenerationTokens, Options.MaxNumSeqs);
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
            // A bug outside a step: nothing would read the queues again, so say so (liveness) rather than hang callers.
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
            long t0 = Stopwatch.GetTimestamp();
            try
            {
                var sampled = _runner.Execute(step);
                _forwardTicks += Stopwatch.GetTimestamp() - t0;
                if (KvCache.Stats is { ReservedSlots: > 0 } k) { _wasteSum += k.KvWaste; _wasteSteps++; }
                _scheduler.UpdateFromOutput(step, sampled, _emitted);
                Emit();
                _consecutiveFailures = 0;
            }
            catch (Exception e) when (e is not OutOfMemoryException) { FailStep(step, e); }
            _steps++;
            _stepTokens += step.NumTokens;
        }
        else if (_scheduler.NumRunning == 0 && _scheduler.PeekWaiting() is { IsHeld: false } stuck) // nothing runs, the head never fits: fail it, do not spin
            Retire(stuck.Request, new EngineRequestException("prompt", $"the request cannot be placed in a KV pool of {NumBlocks} blocks"));
        _stats = Snapshot();
        return true;
    }

    /// <summary>Aborts first (their blocks free at once), then new requests, one waiting sequence per sample.</summary>
    private void Intake()
    {
        while (_front.TryTakeAbort(out var request, out var done))
        {
            if (request is not null) Retire(request, null);
            done.TrySetResult();
        }
        while (_front.TryTakeSubmission(out var state))
        {
            if (_front.SickReason is { } sick) Retire(state, new WorkerUnavailableException($"the worker is unhealthy ({sick}); retry on another worker"));
            else if (state.AbortRequested) Retire(state, null);
            else foreach (var seq in _front.CreateSequences(state, ref _nextSeqId)) _scheduler.AddWaiting(seq);
        }
    }

    private void Emit()
    {
        foreach (var (seq, r, finish) in _emitted)
            if (seq.Request.Deliver(seq, r, finish)) _front.Close(seq.Request);
    }

    /// <summary>Ends a request: frees every unfinished sequence's blocks and closes its stream (with <paramref name="error"/>).</summary>
    private void Retire(RequestState request, Exception? error)
    {
        foreach (var seq in request.Sequences)
            if (seq.Status != SequenceStatus.Finished) _scheduler.Finish(seq);
        _front.Close(request, error);
    }

    /// <summary>
    /// A step threw: the requests it ran fail (their blocks free; their partial KV never reached the
    /// prefix cache), the rest go on. Repeated failures, or a device error, make the worker sick.
    /// </summary>
    private void FailStep(SchedulerOutput step, Exception e)
    {
        Interlocked.Increment(ref _failedSteps);
        var failed = step.Scheduled.Select(s => s.Sequence.Request).Distinct(ReferenceEqualityComparer.Instance).Cast<RequestState>().ToList();
        _log.LogError(e, "engine step failed; failing its {Count} request(s) ({Failures} failed step(s) in a row)", failed.Count, _consecutiveFailures + 1);
        failed.ForEach(r => Retire(r, new GenerationStepFailedException("the engine step running this request failed")));
        string? sick = EngineFrontend.IsDeviceError(e) ? $"device error: {e.GetType().Name}"
            : ++_consecutiveFailures >= Options.MaxConsecutiveStepFailures ? $"{_consecutiveFailures} engine steps in a row failed" : null;
        if (sick is null) return;
        _log.LogCritical("worker is unhealthy: {Reason}; failing over its {Count} request(s), refusing new ones", sick, _front.InFlight);
        _front.MarkSick(sick, Retire);
    }

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
