using System.Collections.Concurrent;
using Loom.Grains.Abstractions;
using Loom.Kernels;
using Loom.Silo.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Loom.Silo.Engine;

/// <summary>
/// One worker's engine: a dedicated thread that runs schedule → execute → sample → emit while
/// work exists and sleeps otherwise. Callers on any thread Submit requests (getting an async
/// stream of token deltas) and Abort them; everything else is touched by the engine thread only.
/// </summary>
public sealed class EngineLoop : IDisposable
{
    private readonly ModelConfig _config;
    private readonly ILogger _log;
    private readonly IKvCacheManager _kv;
    private readonly Scheduler _scheduler;
    private readonly IModelRunner _runner;
    private readonly Sampler _sampler = new();
    private readonly DeviceSampling _deviceSampling = new();
    private readonly SamplingBatch _deviceBatch = new();
    private readonly List<Sequence> _deviceSlots = [];
    private readonly ConcurrentQueue<RequestState> _submissions = new();
    private readonly ConcurrentQueue<(string Id, TaskCompletionSource Done)> _aborts = new();
    private readonly ConcurrentDictionary<string, RequestState> _requests = new();
    private readonly Dictionary<long, Sequence> _byId = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread? _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly int[] _eos;
    private readonly List<BlockCopy> _copies = [];
    private double _wasteSum;
    private long _steps, _stepTokens, _forwardTicks, _sampleTicks;
    private long _wasteSteps;
    private long _nextSeqId;
    private long _arrivals;
    private long _promptTokens, _generationTokens;
    private volatile WorkerStats _stats;
    private int _consecutiveFailures;
    private long _failedSteps;
    private volatile string? _sickReason;
    private volatile bool _threadDead;

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
    /// </summary>
    public EngineLoop(ModelConfig config, EngineOptions options, Func<int, IKvCacheManager, int, IModelRunner> createRunner,
        ILogger? log = null, bool startThread = true)
    {
        if (options.Validate() is { } bad) throw new EngineRequestException(bad.Param, bad.Message);
        _config = config;
        _log = log ?? NullLogger.Instance;
        var c = config;
        MaxModelLen = options.MaxModelLen > 0 ? Math.Min(options.MaxModelLen, c.MaxPositionEmbeddings) : c.MaxPositionEmbeddings;
        Options = options with { MaxModelLen = MaxModelLen };
        var spec = new KvCacheSpec(c.NumLayers, 1, options.BlockSize, c.NumKvHeads, c.HeadDim, options.ResolveKvCacheDType(c));
        NumBlocks = options.NumBlocks ?? (int)Math.Min(int.MaxValue, options.KvCacheBytes / spec.BytesPerBlock);
        if (NumBlocks < 1) throw new EngineRequestException("kv_cache_bytes", $"a KV budget of {options.KvCacheBytes} bytes holds no {spec.BytesPerBlock}-byte block");
        _kv = options.KvAllocation == KvAllocation.Contiguous
            ? new ContiguousKvCacheManager(NumBlocks, options.BlockSize, MaxModelLen)
            : new KvCacheManager(NumBlocks, options.BlockSize, options.EnablePrefixCaching);
        _scheduler = new Scheduler(Options, _kv);
        _runner = createRunner(NumBlocks, _kv, MaxModelLen);
        _eos = [.. c.EosTokenIds];
        _stats = Snapshot();
        _log.LogInformation("KV cache: {Blocks} blocks x {BlockSize} tokens ({MiB:F1} MiB); max concurrency for {MaxLen}-token requests: {Conc:F2}x",
            NumBlocks, options.BlockSize, NumBlocks * spec.BytesPerBlock / 1048576.0, MaxModelLen, (double)NumBlocks * options.BlockSize / MaxModelLen);
        if (startThread)
        {
            _thread = new Thread(Run) { IsBackground = true, Name = "loom-engine" };
            _thread.Start();
        }
    }

    public EngineOptions Options { get; }
    public int MaxModelLen { get; }
    public int NumBlocks { get; }
    public IKvCacheManager KvCache => _kv;
    public long Preemptions => _scheduler.Preemptions;
    public int PeakRunning => _scheduler.PeakRunning;

    /// <summary>Steps that ran the model, the tokens they carried, and the seconds spent in the model and in sampling.</summary>
    public (long Steps, long Tokens, double ForwardSeconds, double SampleSeconds) StepTotals => (_steps, _stepTokens, _forwardTicks / (double)System.Diagnostics.Stopwatch.Frequency, _sampleTicks / (double)System.Diagnostics.Stopwatch.Frequency);

    /// <summary>Why the engine refuses work (repeated step failures, a device error, a dead engine thread); null while healthy.</summary>
    public string? SickReason => _sickReason;

    /// <summary>
    /// False once only a restart can bring the worker back: the engine thread died, or it is sick
    /// (a device error leaves the GPU context unusable; repeated step failures do not cure
    /// themselves). The liveness probe's answer.
    /// </summary>
    public bool IsAlive => !_threadDead && _sickReason is null;

    /// <summary>Steps that threw since start (each failed the requests it was running).</summary>
    public long FailedSteps => Interlocked.Read(ref _failedSteps);

    /// <summary>Reserved-but-unused KV slots as a fraction of reserved ones, averaged over the steps run so far.</summary>
    public double KvWasteFraction => _wasteSteps == 0 ? 0 : _wasteSum / _wasteSteps;

    /// <summary>
    /// Validates and queues a request. Bad input throws <see cref="EngineRequestException"/> here,
    /// before anything is queued. Cancelling <paramref name="cancellationToken"/> aborts the request.
    /// </summary>
    public IAsyncEnumerable<TokenDelta> Submit(EngineRequest request, CancellationToken cancellationToken = default)
    {
        if (_sickReason is { } sick) throw new WorkerUnavailableException($"the worker is unhealthy ({sick}); retry on another worker");
        Validate(request);
        var state = new RequestState(request, Interlocked.Increment(ref _arrivals), _eos);
        if (!_requests.TryAdd(request.RequestId, state))
            throw new EngineRequestException("request_id", $"request id '{request.RequestId}' is already in flight");
        _submissions.Enqueue(state);
        _wake.Release();
        if (_threadDead && _requests.TryRemove(request.RequestId, out _))
            state.Complete(new WorkerUnavailableException("the worker's engine stopped; retry on another worker"));
        if (cancellationToken.CanBeCanceled)
            cancellationToken.Register(() => _ = AbortAsync(request.RequestId));
        return state.Reader.ReadAllAsync(CancellationToken.None);
    }

    private void Validate(EngineRequest r)
    {
        if (r.Sampling.Validate() is { } bad) throw new EngineRequestException(bad.Param, bad.Message);
        // n > 1 forks its samples into the running batch together: more than the batch holds can never run.
        if (r.Sampling.N > Options.MaxNumSeqs)
            throw new EngineRequestException("n", $"n={r.Sampling.N} is more than this worker runs at once (engine.max_num_seqs={Options.MaxNumSeqs})");
        int n = r.PromptTokenIds.Count;
        if (n == 0) throw new EngineRequestException("prompt", "the prompt is empty");
        if (n >= MaxModelLen)
            throw new EngineRequestException("prompt", $"this model's maximum context length is {MaxModelLen} tokens; the prompt has {n}");
        if (n + r.Sampling.MaxTokens > MaxModelLen)
            throw new EngineRequestException("max_tokens",
                $"this model's maximum context length is {MaxModelLen} tokens; you requested {n + r.Sampling.MaxTokens} ({n} in the prompt, {r.Sampling.MaxTokens} for the completion)");
        int vocab = _config.VocabSize;
        foreach (var id in r.PromptTokenIds)
            if ((uint)id >= (uint)vocab) throw new EngineRequestException("prompt", $"token id {id} is outside the vocabulary [0, {vocab})");
        if (r.ResumeOutputTokens is { Count: > 0 } resumed)
        {
            // One sample's output only: the gateway resumes each sample of an n > 1 request on its own.
            if (r.Sampling.N != 1) throw new EngineRequestException("n", "a resumed request must have n = 1");
            if (resumed.Count >= r.Sampling.MaxTokens)
                throw new EngineRequestException("resume_token_ids", $"{resumed.Count} tokens to resume leave nothing to generate under max_tokens={r.Sampling.MaxTokens}");
            foreach (var id in resumed)
                if ((uint)id >= (uint)vocab) throw new EngineRequestException("resume_token_ids", $"token id {id} is outside the vocabulary [0, {vocab})");
        }
        long blocksNeeded = ((long)n + r.Sampling.MaxTokens + Options.BlockSize - 1) / Options.BlockSize;
        if (blocksNeeded > NumBlocks)
            throw new EngineRequestException("max_tokens", $"the request needs {blocksNeeded} KV blocks but the pool holds {NumBlocks}");
    }

    /// <summary>Aborts a request; the returned task completes once its blocks are back in the pool.</summary>
    public Task AbortAsync(string requestId)
    {
        if (_threadDead || !_requests.TryGetValue(requestId, out var state)) return Task.CompletedTask;
        state.AbortRequested = true;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _aborts.Enqueue((requestId, done));
        _wake.Release();
        if (_thread is null) Step();
        return done.Task;
    }

    public WorkerStats GetStats() => _stats;

    private WorkerStats Snapshot()
    {
        var k = _kv.Stats;
        return new WorkerStats(_scheduler.NumRunning, _scheduler.NumWaiting, k.TotalBlocks, k.FreeBlocks, k.UsedBlocks, k.CachedFreeBlocks,
            k.Usage, k.PrefixQueries, k.PrefixHits, _scheduler.Preemptions, _promptTokens, _generationTokens, Options.MaxNumSeqs);
    }

    private void Run()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                if (!Step()) _wake.Wait(_stop.Token);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e)
        {
            // A failure outside a model step is a bug in the loop itself: nothing will read the queues
            // again, so the worker must say so (liveness) instead of accepting work that would hang.
            _log.LogCritical(e, "engine thread died; failing every request in flight over to other workers");
            _threadDead = true;
            _sickReason = $"the engine thread died ({e.GetType().Name})";
            var unavailable = new WorkerUnavailableException($"the worker's engine stopped ({_sickReason}); retry on another worker");
            foreach (var r in _requests.Values) r.Complete(unavailable);
            _requests.Clear();
            while (_aborts.TryDequeue(out var a)) a.Done.TrySetResult();
        }
    }

    /// <summary>One engine iteration. Returns false when there was nothing to do.</summary>
    public bool Step()
    {
        DrainAborts();
        if (_sickReason is { } sick)
        {
            // Submitted in the instant before the worker turned sick: they go elsewhere too.
            while (_submissions.TryDequeue(out var late)) Retire(late, new WorkerUnavailableException($"the worker is unhealthy ({sick}); retry on another worker"));
        }
        while (_submissions.TryDequeue(out var state)) Admit(state);
        if (!_scheduler.HasWork) { _stats = Snapshot(); return false; }

        var step = _scheduler.Schedule();
        if (step.Scheduled.Count > 0)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                var logits = _runner.Execute(step);
                long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
                var k = _kv.Stats;
                if (k.ReservedSlots > 0) { _wasteSum += k.KvWaste; _wasteSteps++; }
                Postprocess(step, logits);
                _forwardTicks += t1 - t0;
                _sampleTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t1;
                _consecutiveFailures = 0;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                FailStep(step, e);
            }
            _steps++;
            _stepTokens += step.NumTokens;
        }
        else if (_scheduler.NumRunning == 0 && _scheduler.PeekWaiting() is { } stuck)
        {
            // Nothing runs and the head of the queue still does not fit (a contiguous reservation
            // larger than the pool): fail it rather than spin.
            FailRequest(stuck.Request, $"the request cannot be placed in a KV pool of {NumBlocks} blocks");
        }
        _stats = Snapshot();
        return true;
    }

    private void Admit(RequestState state)
    {
        if (state.AbortRequested) { state.Complete(); _requests.TryRemove(state.Request.RequestId, out _); return; }
        var seq = new Sequence(_nextSeqId++, state, 0, NewSamplingState(state, 0));
        state.Sequences.Add(seq);
        _byId[seq.Id] = seq;
        _scheduler.AddWaiting(seq);
    }

    private SamplingState NewSamplingState(RequestState state, int index) =>
        state.Request.ResumeOutputTokens is { Count: > 0 } resumed
            ? SamplingState.Resume(state.Request.Sampling, state.PromptArray, resumed as int[] ?? [.. resumed], _eos,
                SamplingState.DeriveSeed(state.Request.Sampling, index), index, state.StopIds)
            : new(state.Request.Sampling, state.PromptArray, _eos, index, state.StopIds);

    private void Postprocess(SchedulerOutput step, ReadOnlySpan<float> logits)
    {
        int vocab = _config.VocabSize;
        bool device = _runner.SamplesOnDevice;
        if (device)
        {
            _deviceBatch.Clear();
            _deviceSlots.Clear();
        }
        int row = 0;
        // Snapshot the count: forking adds running sequences that must not be post-processed twice.
        int count = step.Scheduled.Count;
        for (int i = 0; i < count; i++)
        {
            var s = step.Scheduled[i];
            var seq = s.Sequence;
            bool samples = s.Samples;
            seq.NumComputedTokens += s.NumNewTokens;
            if (seq.NumComputedTokens <= seq.PromptLength) _promptTokens += s.NumNewTokens;
            _kv.CacheBlocks(seq.Id, seq.Tokens, seq.NumComputedTokens, seq.Request.Request.CacheSalt);
            if (!samples) continue;
            int r = row++;
            var rowLogits = device ? default : logits.Slice(r * vocab, vocab);
            var request = seq.Request;
            if (request.Request.Sampling.N > 1 && !request.Forked) ForkSamples(seq, r, rowLogits, device);
            if (device) AddDeviceSlot(seq, r);
            else SampleAndEmit(seq, rowLogits);
        }
        if (device && _deviceSlots.Count > 0)
        {
            // One launch for the whole step; only ids and logprobs come back.
            _runner.SampleOnDevice(_deviceBatch);
            for (int slot = 0; slot < _deviceSlots.Count; slot++)
            {
                var seq = _deviceSlots[slot];
                Emit(seq, DeviceSampling.Result(_deviceBatch, slot, seq.Sampling.Params));
            }
            _deviceSlots.Clear();
        }
    }

    private void AddDeviceSlot(Sequence seq, int row)
    {
        _deviceSampling.AddSlot(_deviceBatch, row, seq.Sampling);
        _deviceSlots.Add(seq);
    }

    /// <summary>
    /// n &gt; 1: the prompt was computed once by sample 0; the other samples share its full blocks
    /// and copy its partial last block, then sample their own first token from the same logits row.
    /// </summary>
    private void ForkSamples(Sequence parent, int row, ReadOnlySpan<float> logits, bool device)
    {
        var request = parent.Request;
        request.Forked = true;
        for (int i = 1; i < request.Request.Sampling.N; i++)
        {
            var child = new Sequence(_nextSeqId++, parent, i, NewSamplingState(request, i));
            _copies.Clear();
            if (!_kv.Fork(parent.Id, child.Id, parent.NumComputedTokens, _copies))
            {
                // No block for the child's tail: let it recompute the prompt (prefix caching makes that cheap).
                child.NumComputedTokens = 0;
                request.Sequences.Add(child);
                _byId[child.Id] = child;
                _scheduler.AddWaiting(child);
                continue;
            }
            foreach (var c in _copies) _runner.CopyBlock(c);
            request.Sequences.Add(child);
            _byId[child.Id] = child;
            _scheduler.AddRunning(child);
            if (device) AddDeviceSlot(child, row);
            else SampleAndEmit(child, logits);
        }
    }

    private void SampleAndEmit(Sequence seq, ReadOnlySpan<float> logits) => Emit(seq, _sampler.Sample(logits, seq.Sampling));

    private void Emit(Sequence seq, SampleResult result)
    {
        seq.Append(result.Token);
        seq.Sampling.Append(result.Token);
        _generationTokens++;
        var finish = Sampler.CheckFinish(seq.Sampling, result.Token);
        var request = seq.Request;
        request.Emit(new TokenDelta(seq.Index, result.Token, result.Logprob, result.TopLogprobs, finish,
            seq.PromptLength, seq.OutputLength));
        if (finish is not null) FinishSequence(seq);
    }

    private void FinishSequence(Sequence seq)
    {
        _scheduler.Finish(seq);
        _byId.Remove(seq.Id);
        var request = seq.Request;
        request.FinishedSequences++;
        if (request.IsFinished)
        {
            request.Complete();
            _requests.TryRemove(request.Request.RequestId, out _);
        }
    }

    private void FailRequest(RequestState request, string message) => Retire(request, new EngineRequestException("prompt", message));

    /// <summary>
    /// A step threw: the requests it was running fail (their blocks return to the pool, so the KV
    /// usage is what the survivors hold), and the engine goes on with the rest. The requests' partial
    /// KV of this step is never registered in the prefix cache (that happens after a step succeeds).
    /// Repeated failures, or a device error, make the worker sick.
    /// </summary>
    private void FailStep(SchedulerOutput step, Exception e)
    {
        Interlocked.Increment(ref _failedSteps);
        var failed = new HashSet<RequestState>(ReferenceEqualityComparer.Instance);
        foreach (var s in step.Scheduled) failed.Add(s.Sequence.Request);
        _log.LogError(e, "engine step failed; failing its {Count} request(s) ({Failures} failed step(s) in a row)", failed.Count, _consecutiveFailures + 1);
        var error = new GenerationStepFailedException("the engine step running this request failed");
        foreach (var request in failed) Retire(request, error);
        _deviceSlots.Clear();
        _copies.Clear();
        if (IsDeviceError(e)) MarkSick($"device error: {e.GetType().Name}");
        else if (++_consecutiveFailures >= Options.MaxConsecutiveStepFailures) MarkSick($"{_consecutiveFailures} engine steps in a row failed");
    }

    /// <summary>A CUDA error leaves the context unusable: no later step can be trusted.</summary>
    private static bool IsDeviceError(Exception e) =>
        e is Loom.Kernels.Cuda.Interop.CudaException or Loom.Kernels.Cuda.Interop.CublasException or Loom.Kernels.Collectives.NcclException
        || e.InnerException is { } inner && IsDeviceError(inner);

    /// <summary>
    /// The worker is sick: it refuses new work, and everything it holds fails over to other workers
    /// (those requests were not at fault, so they are resumed elsewhere from the tokens they have).
    /// </summary>
    private void MarkSick(string reason)
    {
        _sickReason = reason;
        _log.LogCritical("worker is unhealthy: {Reason}; failing over its {Count} request(s) and refusing new ones", reason, _requests.Count);
        var unavailable = new WorkerUnavailableException($"the worker became unhealthy ({reason}); retry on another worker");
        while (_submissions.TryDequeue(out var queued)) Retire(queued, unavailable);
        foreach (var request in _requests.Values.ToList()) Retire(request, unavailable);
    }

    /// <summary>Ends a request with <paramref name="error"/>: frees every unfinished sequence's blocks and closes its stream.</summary>
    private void Retire(RequestState request, Exception error)
    {
        foreach (var seq in request.Sequences)
        {
            if (seq.Status == SequenceStatus.Finished) continue;
            _scheduler.Finish(seq);
            _byId.Remove(seq.Id);
        }
        request.Complete(error);
        _requests.TryRemove(request.Request.RequestId, out _);
    }

    private void DrainAborts()
    {
        while (_aborts.TryDequeue(out var a))
        {
            if (_requests.TryGetValue(a.Id, out var request))
            {
                foreach (var seq in request.Sequences)
                {
                    if (seq.Status == SequenceStatus.Finished) continue;
                    request.Emit(new TokenDelta(seq.Index, -1, null, null, FinishReason.Abort, seq.PromptLength, seq.OutputLength));
                    FinishSequence(seq);
                }
                // Samples not forked yet, or a request not admitted yet, hold no blocks: just close the stream.
                request.Complete();
                _requests.TryRemove(a.Id, out _);
            }
            a.Done.TrySetResult();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread?.Join();
        foreach (var r in _requests.Values) r.Complete(new ObjectDisposedException(nameof(EngineLoop)));
        _runner.Dispose();
        _wake.Dispose();
        _stop.Dispose();
    }
}
