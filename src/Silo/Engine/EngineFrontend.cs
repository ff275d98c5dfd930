using System.Collections.Concurrent;
using Loom.Grains.Abstractions;
using Loom.Silo.Models;

using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>A request the engine refuses at Submit; Param names the offending field as OpenAI would.</summary>
public sealed class EngineRequestException(string param, string message) : ArgumentException(message, param)
{
    public string Param { get; } = param;
}

/// <summary>
/// The engine's front end, on the callers' threads: it checks what only this worker can check (its
/// context length, vocabulary, batch and pool), registers each request and queues it, with aborts,
/// for the engine thread. The gateway has validated the request's fields; this asserts the
/// invariants the engine relies on, once, at the door.
/// </summary>
public sealed class EngineFrontend(ModelConfig config, EngineOptions options, int numBlocks, int[] eos)
{
    private readonly ConcurrentQueue<RequestState> _submissions = new();
    private readonly ConcurrentQueue<(string Id, TaskCompletionSource Done)> _aborts = new();
    private readonly ConcurrentDictionary<string, RequestState> _requests = new();
    private long _arrivals;

    /// <summary>Released on every submission and abort: the engine thread waits on it when idle.</summary>
    public SemaphoreSlim Wake { get; } = new(0);

    /// <summary>Why the engine refuses work; null while healthy.</summary>
    public volatile string? SickReason;

    /// <summary>Set once the engine thread has died: nothing will read the queues again.</summary>
    public volatile bool Stopped;

    public int InFlight => _requests.Count;

    /// <summary>The structured-output constraint of sample i of a request (null: unconstrained); set by the worker's compiler.</summary>
    public Func<GenerationRequest, int, ITokenConstraint?>? Constraints { get; set; }

    /// <summary>Run on the submitting thread before a request is queued (the worker compiles its structured output here); may throw <see cref="EngineRequestException"/>.</summary>
    public Action<GenerationRequest>? Prepare { get; set; }

    public IAsyncEnumerable<TokenDelta> Submit(GenerationRequest request, CancellationToken cancellationToken)
    {
        if (SickReason is { } sick) throw new WorkerUnavailableException($"the worker is unhealthy ({sick}); retry on another worker");
        Check(request);
        Prepare?.Invoke(request);
        var state = new RequestState(request, Interlocked.Increment(ref _arrivals), eos);
        if (!_requests.TryAdd(request.RequestId, state))
            throw new EngineRequestException("request_id", $"request id '{request.RequestId}' is already in flight");
        _submissions.Enqueue(state);
        Wake.Release();
        if (Stopped && _requests.TryRemove(request.RequestId, out _))
            state.Complete(new WorkerUnavailableException("the worker's engine stopped; retry on another worker"));
        if (cancellationToken.CanBeCanceled) cancellationToken.Register(() => _ = AbortAsync(request.RequestId));
        return state.Reader.ReadAllAsync(CancellationToken.None);
    }

    private void Check(GenerationRequest r)
    {
        var p = r.Sampling;
        if (p.Validate() is { } bad) throw new EngineRequestException(bad.Param, bad.Message);
        // n > 1 runs its samples side by side: more than the batch holds could never all run.
        if (p.N > options.MaxNumSeqs)
            throw new EngineRequestException("n", $"n={p.N} is more than this worker runs at once (engine.max_num_seqs={options.MaxNumSeqs})");
        int n = r.PromptTokenIds.Count, maxLen = options.MaxModelLen;
        if (n == 0) throw new EngineRequestException("prompt", "the prompt is empty");
        if (n >= maxLen) throw new EngineRequestException("prompt", $"this model's maximum context length is {maxLen} tokens; the prompt has {n}");
        if (n + p.MaxTokens > maxLen)
            throw new EngineRequestException("max_tokens",
                $"this model's maximum context length is {maxLen} tokens; you requested {n + p.MaxTokens} ({n} in the prompt, {p.MaxTokens} for the completion)");
        int vocab = config.VocabSize;
        foreach (var id in r.PromptTokenIds)
            if ((uint)id >= (uint)vocab) throw new EngineRequestException("prompt", $"token id {id} is outside the vocabulary [0, {vocab})");
        if (r.ResumeTokenIds is { Count: > 0 } resumed)
        {
            if (p.N != 1) throw new EngineRequestException("n", "a resumed request must have n = 1");
            if (resumed.Count >= p.MaxTokens)
                throw new EngineRequestException("resume_token_ids", $"{resumed.Count} tokens to resume leave nothing to generate under max_tokens={p.MaxTokens}");
            foreach (var id in resumed)
                if ((uint)id >= (uint)vocab) throw new EngineRequestException("resume_token_ids", $"token id {id} is outside the vocabulary [0, {vocab})");
        }
        long blocksNeeded = ((long)n + p.MaxTokens + options.BlockSize - 1) / options.BlockSize;
        if (blocksNeeded > numBlocks)
            throw new EngineRequestException("max_tokens", $"the request needs {blocksNeeded} KV blocks but the pool holds {numBlocks}");
    }

    /// <summary>Aborts a request; the returned task completes once its blocks are back in the pool.</summary>
    public Task AbortAsync(string requestId)
    {
        if (Stopped || !_requests.TryGetValue(requestId, out var state)) return Task.CompletedTask;
        state.AbortRequested = true;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _aborts.Enqueue((requestId, done));
        Wake.Release();
        return done.Task;
    }

    public bool TryTakeSubmission(out RequestState state) => _submissions.TryDequeue(out state!);

    /// <summary>The next abort: its request (null when it already ended, with an abort delta per open sample) and its completion.</summary>
    public bool TryTakeAbort(out RequestState? request, out TaskCompletionSource done)
    {
        bool got = _aborts.TryDequeue(out var a);
        done = a.Done;
        request = got && _requests.TryGetValue(a.Id, out var r) ? r : null;
        if (request is not null)
            foreach (var seq in request.Sequences)
                if (seq.Status != SequenceStatus.Finished)
                    request.Emit(new TokenDelta(seq.Index, -1, null, null, FinishReason.Abort));
        return got;
    }

    /// <summary>One sequence per sample: sample i draws with seed + i (or its own fresh seed), resumed tokens and all.</summary>
    public IEnumerable<Sequence> CreateSequences(RequestState state, ref long nextSeqId)
    {
        var p = state.Request.Sampling;
        var created = new Sequence[p.N];
        for (int i = 0; i < p.N; i++)
        {
            ulong seed = SamplingState.DeriveSeed(p, i);
            var sampling = state.Request.ResumeTokenIds is { Count: > 0 } resumed
                ? SamplingState.Resume(p, state.PromptArray, resumed as int[] ?? [.. resumed], eos, seed, i, state.StopIds)
                : SamplingState.Create(p, state.PromptArray, eos, i, seed, state.StopIds);
            sampling.Constraint = Constraints?.Invoke(state.Request, i);
            created[i] = new Sequence(nextSeqId++, state, i, sampling);
            state.Sequences.Add(created[i]);
        }
        return created;
    }

    /// <summary>Closes a request's stream (with <paramref name="error"/>, or normally) and forgets it.</summary>
    public void Close(RequestState request, Exception? error = null)
    {
        request.Complete(error);
        _requests.TryRemove(request.Request.RequestId, out _);
    }

    /// <summary>Every registered request, for failing them all over.</summary>
    public IReadOnlyList<RequestState> All() => [.. _requests.Values];

    /// <summary>The worker is sick: from now on it refuses work; everything it holds goes elsewhere (it was not at fault).</summary>
    public void MarkSick(string reason, Action<RequestState, Exception> retire)
    {
        SickReason = reason;
        var unavailable = new WorkerUnavailableException($"the worker became unhealthy ({reason}); retry on another worker");
        while (_submissions.TryDequeue(out var queued)) retire(queued, unavailable);
        foreach (var request in All()) retire(request, unavailable);
    }

    /// <summary>A CUDA, cuBLAS or NCCL error leaves the device unusable: no later step can be trusted.</summary>
    public static bool IsDeviceError(Exception e) =>
        e is Loom.Kernels.Cuda.Interop.CudaException or Loom.Kernels.Cuda.Interop.CublasException or Loom.Kernels.Collectives.NcclException
        || e.InnerException is { } inner && IsDeviceError(inner);

    /// <summary>The engine thread is gone: fail everything, answer every pending abort, refuse from now on.</summary>
    public void Stop(string reason)
    {
        SickReason = reason;
        Stopped = true;
        var unavailable = new WorkerUnavailableException($"the worker's engine stopped ({reason}); retry on another worker");
        foreach (var r in All()) Close(r, unavailable);
        while (_aborts.TryDequeue(out var a)) a.Done.TrySetResult();
    }
}
