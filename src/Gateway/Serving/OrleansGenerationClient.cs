using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Loom.Gateway.Serving;

/// <summary>
/// The gateway's <see cref="IGenerationClient"/> over Orleans: the router grain picks a worker, the
/// worker grain streams token deltas, and when the worker dies mid-stream the request continues on
/// another worker from the tokens already streamed, so the caller sees one unbroken stream.
/// </summary>
/// <remarks>
/// <para>Seeds: an unseeded request gets a random seed here, before its first submission. Sampling
/// with it is as random as the engine's own fresh seed, and a resubmission can pass the same seed, so
/// the resumed worker samples exactly what the dead one would have (the engine's draws are
/// counter-based: output token k uses (seed, k)).</para>
/// <para>n &gt; 1: sample i of a seeded request uses seed + i. If a worker fails before any sample has
/// a token, the whole request is resubmitted; otherwise each unfinished sample i is resumed on its own
/// as an n = 1 request with seed + i and its tokens so far, one after the other, its deltas
/// re-indexed to i.</para>
/// </remarks>
/// <para>Faults: a worker that dies, is unreachable or turns sick (<see cref="WorkerUnavailableException"/>)
/// is the worker's fault, and the stream goes on elsewhere. A failed engine step
/// (<see cref="GenerationStepFailedException"/>) may be the request's own fault: it is tried on one
/// more worker, and a second step failure ends it with a 500, so one poison request cannot take
/// down every worker in turn. Each submission has its own engine id, so a resubmission never meets
/// a stale registration of an earlier one. No request waits for its first token past
/// <c>firstTokenTimeout</c>.</para>
public sealed class OrleansGenerationClient(IGrainFactory grains, ILogger<OrleansGenerationClient>? log = null, WorkerLivenessWatcher? watcher = null,
    TimeSpan? firstTokenTimeout = null)
    : IGenerationClient, IDisposable
{
    private readonly ILogger _log = (ILogger?)log ?? NullLogger.Instance;
    private readonly WorkerLivenessWatcher _watcher = watcher ?? new WorkerLivenessWatcher(grains, log: log);
    private ModelInfo? _info;

    /// <summary>How long a caller waits for a router/worker before "no worker" becomes the answer.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>How long a request waits for a worker (failure detection takes a few seconds on a busy host) before a 503.</summary>
    public static readonly TimeSpan PickPatience = TimeSpan.FromSeconds(8);

    /// <summary>
    /// How long a call to a live worker may stay unanswered across another silo's death before it is
    /// taken for lost in that silo's gateway and the stream resumes elsewhere. A serving worker
    /// answers within a step; a false alarm costs one resubmission, never a token.
    /// </summary>
    public static readonly TimeSpan StaleAfterDeath = TimeSpan.FromSeconds(2);

    /// <summary>Resubmissions of one stream before its failure is the caller's answer.</summary>
    private const int MaxResubmissions = 8;

    /// <summary>Failed engine steps one request may cause before it is refused as the likely culprit.</summary>
    public const int MaxStepFailures = 2;

    /// <summary>How long a 429 asks the client to wait when every worker's queue is full.</summary>
    public static readonly TimeSpan QueueFullRetryAfter = TimeSpan.FromSeconds(2);

    private readonly TimeSpan? _firstTokenTimeout = firstTokenTimeout is { } t && t > TimeSpan.Zero ? t : null;

    private IRouterGrain Router => grains.GetGrain<IRouterGrain>(0);

    public async Task<ModelInfo> GetModelInfoAsync(CancellationToken cancellationToken)
    {
        if (_info is { } cached) return cached;
        var exclude = new List<string>();
        while (true)
        {
            var (key, _) = await PickAsync([], exclude, [], [], cancellationToken);
            try { return _info = await grains.GetGrain<IWorkerGrain>(key).GetModelInfoAsync().WaitAsync(cancellationToken); }
            catch (Exception e) when (IsWorkerFailure(e, cancellationToken)) { exclude.Add(key); }
        }
    }

    /// <summary>
    /// Every worker's load, asked of the worker itself: the router's view lags by a refresh period,
    /// and a scrape right after a burst must not report requests that have finished. A worker that
    /// does not answer within a second keeps the router's last report.
    /// </summary>
    public async Task<IReadOnlyList<WorkerStats>> GetWorkerStatsAsync(CancellationToken cancellationToken)
    {
        var known = (await Router.GetWorkerStatsAsync().WaitAsync(cancellationToken)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var fresh = await Task.WhenAll(known.Select(async kv =>
        {
            try { return await grains.GetGrain<IWorkerGrain>(kv.Key).GetStatsAsync().WaitAsync(TimeSpan.FromSeconds(1), cancellationToken); }
            catch (Exception e) when (IsWorkerFailure(e, cancellationToken)) { return kv.Value; }
        }));
        return fresh;
    }

    public async Task<IReadOnlyDictionary<string, string>> GetUnavailableWorkersAsync(CancellationToken cancellationToken) =>
        await Router.GetUnavailableWorkersAsync().WaitAsync(cancellationToken);

    public async IAsyncEnumerable<TokenDelta> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var sampling = request.Sampling.Seed is null ? request.Sampling with { Seed = NewSeed() } : request.Sampling;
        request = request with { Sampling = sampling };
        int n = sampling.N;
        var run = new RunState(n, _firstTokenTimeout);

        // First the request as a whole; after a failure with progress, sample by sample.
        var whole = new Attempt(request, -1);
        await foreach (var d in RunAsync(whole, run, cancellationToken)) yield return d;
        if (!whole.Failed) yield break;
        for (int i = 0; i < n; i++)
        {
            if (run.Finished[i]) continue;
            var one = new Attempt(request with
            {
                RequestId = $"{request.RequestId}#{i}",
                Sampling = sampling with { N = 1, Seed = unchecked(sampling.Seed!.Value + (ulong)i) },
            }, i);
            await foreach (var d in RunAsync(one, run, cancellationToken)) yield return d;
        }
    }

    /// <summary>What one client request has seen so far, across its attempts.</summary>
    private sealed class RunState(int n, TimeSpan? firstTokenTimeout)
    {
        public List<int>[] Tokens { get; } = [.. Enumerable.Range(0, n).Select(_ => new List<int>())];
        public bool[] Finished { get; } = new bool[n];
        public List<string> Exclude { get; } = [];
        public int StepFailures { get; set; }
        public int Submissions { get; set; }
        public bool AnyDelta { get; set; }

        /// <summary>When the first token is overdue, from the moment the request arrived; null: no deadline.</summary>
        public long? FirstTokenDeadline { get; } = firstTokenTimeout is { } t ? System.Diagnostics.Stopwatch.GetTimestamp() + (long)(t.TotalSeconds * System.Diagnostics.Stopwatch.Frequency) : null;

        public TimeSpan? FirstTokenTimeout { get; } = firstTokenTimeout;
    }

    /// <summary>One logical stream (the whole request, or sample <c>Index</c> alone) with its failovers.</summary>
    private sealed class Attempt(GenerationRequest request, int index)
    {
        public GenerationRequest Request { get; } = request;

        /// <summary>-1: the whole request (deltas keep their index); else the sample this n = 1 stream stands for.</summary>
        public int Index { get; } = index;

        /// <summary>Set when the whole request failed after some progress and must go on per sample.</summary>
        public bool Failed { get; set; }
    }

    private async IAsyncEnumerable<TokenDelta> RunAsync(Attempt attempt, RunState run, [EnumeratorCancellation] CancellationToken ct)
    {
        int resubmissions = 0;
        var exclude = run.Exclude;
        var tokens = run.Tokens;
        var busy = new List<string>(); // workers that refused this stream as full since it last made progress
        var queueFull = new List<string>(); // workers whose queue (engine.max_waiting) refused it
        while (true)
        {
            var request = attempt.Request;
            if (attempt.Index >= 0 && tokens[attempt.Index].Count > 0)
                request = request with { ResumeTokenIds = [.. tokens[attempt.Index]] };
            // Every submission gets its own engine id: a worker that failed an earlier one may still
            // hold its registration, and a resubmission must never collide with it.
            if (run.Submissions++ > 0) request = request with { RequestId = $"{request.RequestId}~{run.Submissions - 1}" };
            var (key, queue) = await PickAsync(request.PromptTokenIds, exclude, busy, queueFull, ct);
            request = request with { RefuseIfFull = !queue };
            using var liveness = _watcher.Watch(key);
            using var overdue = FirstTokenWatch(run);
            var stream = grains.GetGrain<IWorkerGrain>(key).GenerateAsync(request, ct).GetAsyncEnumerator(ct);
            Exception? failure = null;
            bool refused = false, stepFailed = false;
            Task<bool>? pending = null;
            try
            {
                while (true)
                {
                    // C# cannot yield inside a try with a catch: fetch here, yield below.
                    TokenDelta delta;
                    try
                    {
                        // A dead silo's stream would only fail at the response timeout; the
                        // membership watcher cuts it short as soon as the silo is declared dead.
                        pending = stream.MoveNextAsync().AsTask();
                        if (!await AwaitMoveAsync(pending, liveness.Token, run.AnyDelta ? CancellationToken.None : overdue.Token)) break;
                        pending = null;
                        delta = stream.Current;
                    }
                    catch (OperationCanceledException) when (overdue.IsCancellationRequested && !ct.IsCancellationRequested)
                    {
                        throw new FirstTokenTimeoutException(
                            $"no worker produced a first token within {run.FirstTokenTimeout!.Value.TotalSeconds:F0} s (gateway.first_token_timeout_s); the request was cancelled");
                    }
                    catch (InvalidGenerationRequestException e)
                    {
                        throw new InvalidRequestException(e.Message, e.Param);
                    }
                    catch (WorkerBusyException)
                    {
                        // Its batch filled up after the router's last look: try the next one.
                        refused = true;
                        break;
                    }
                    catch (WorkerQueueFullException)
                    {
                        queueFull.Add(key);
                        refused = true;
                        break;
                    }
                    catch (GenerationStepFailedException e)
                    {
                        failure = e;
                        stepFailed = true;
                        break;
                    }
                    catch (Exception e) when (IsWorkerFailure(e, ct))
                    {
                        failure = e;
                        break;
                    }
                    busy.Clear();
                    run.AnyDelta = true;
                    if (attempt.Index >= 0) delta = delta with { Index = attempt.Index };
                    if (delta.TokenId >= 0) tokens[delta.Index].Add(delta.TokenId);
                    if (delta.Finish is not null) run.Finished[delta.Index] = true;
                    yield return delta;
                }
            }
            finally
            {
                // A call given up on (dead silo, lost relay) ends at the response timeout: observe it then.
                if (pending is { IsCompleted: false }) _ = pending.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                if (liveness.Token.IsCancellationRequested || overdue.IsCancellationRequested)
                {
                    // Its silo is dead (or stuck): the disposal would wait out the response timeout too.
                    _ = DisposeQuietlyAsync(stream);
                }
                else
                {
                    try { await stream.DisposeAsync(); }
                    catch (Exception e) when (IsWorkerFailure(e, ct)) { /* the worker is gone already */ }
                }
            }
            if (refused)
            {
                busy.Add(key);
                continue;
            }
            if (failure is null)
            {
                // Tell the router the slot is free now rather than at the worker's next load report.
                _ = Router.ReleaseWorkerAsync(key);
                yield break;
            }

            exclude.Add(key);
            if (stepFailed && ++run.StepFailures >= MaxStepFailures)
            {
                // The same request broke a step on two workers: it is most likely the cause, so it
                // goes to no third one.
                _log.LogError("request {Request} failed an engine step on {Count} workers (last {Worker}); giving up on it",
                    attempt.Request.RequestId, run.StepFailures, key);
                throw new GenerationFailedException("the request failed on two workers");
            }
            if (++resubmissions > MaxResubmissions)
            {
                _log.LogError("request {Request} failed on {Count} workers; last error: {Error}", attempt.Request.RequestId, resubmissions, failure.Message);
                throw new GenerationFailedException($"the request failed on {resubmissions} workers");
            }
            _log.LogWarning("worker {Worker} failed while streaming request {Request} ({Error}); resubmitting from {Done} tokens",
                key, attempt.Request.RequestId, failure.GetType().Name + ": " + failure.Message, tokens.Sum(t => t.Count));
            if (attempt.Index < 0 && tokens.Any(t => t.Count > 0))
            {
                // Progress on a whole request: each sample resumes on its own (see remarks).
                if (attempt.Request.Sampling.N > 1) { attempt.Failed = true; yield break; }
                attempt = new Attempt(attempt.Request, 0);
            }
        }
    }

    /// <summary>A token source that fires when the request's first token is overdue (never, once a token came or with no deadline).</summary>
    private static CancellationTokenSource FirstTokenWatch(RunState run)
    {
        var cts = new CancellationTokenSource();
        if (run.AnyDelta || run.FirstTokenDeadline is not { } deadline) return cts;
        long left = deadline - System.Diagnostics.Stopwatch.GetTimestamp();
        if (left <= 0) cts.Cancel();
        else cts.CancelAfter(TimeSpan.FromSeconds(left / (double)System.Diagnostics.Stopwatch.Frequency));
        return cts;
    }

    /// <summary>
    /// Asks the router for a worker, skipping those that failed the request and those that just
    /// refused it as full; once every worker has refused, the least loaded one gets it to queue
    /// (Queue = true). A router whose silo just died is retried, and an empty view (a refresh after
    /// a failover, a worker draining, a slow report) is waited out, for up to
    /// <see cref="PickPatience"/> in all; then "no worker" is a 503 that says why.
    /// </summary>
    private async Task<(string Key, bool Queue)> PickAsync(IReadOnlyList<int> prompt, List<string> exclude, List<string> busy, List<string> queueFull,
        CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + PickPatience;
        bool queue = false;
        int reallowed = 0;
        while (true)
        {
            string? key;
            string why;
            try
            {
                List<string> skip = queue ? [.. exclude, .. queueFull] : [.. exclude, .. busy, .. queueFull];
                key = await Router.PickWorkerAsync(prompt, skip.Count > 0 ? skip : null).WaitAsync(ct);
                if (key is not null) return (key, queue);
                if (!queue && busy.Count > 0)
                {
                    // Every worker left is full: queue on the least loaded rather than wait.
                    queue = true;
                    continue;
                }
                if (queueFull.Count > 0)
                {
                    // Every worker that could take it has a full queue: push back rather than pile up.
                    throw new TooManyRequestsException($"every worker's queue is full ({queueFull.Count} refused)", QueueFullRetryAfter);
                }
                // Workers that failed this request but whose silos are alive (a stream cut by a
                // busy host, say) are better than none: allow them again, after a growing pause, so
                // a silo that is shutting down but not yet declared dead is not hammered until the
                // resubmission budget is gone.
                if (exclude.RemoveAll(k => !_watcher.IsDead(k)) > 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 250 << Math.Min(3, reallowed++))), ct);
                    continue;
                }
                why = exclude.Count == 0 ? "no worker is available to serve this request" : $"no worker is left to serve this request ({exclude.Count} failed)";
            }
            catch (Exception e) when (IsWorkerFailure(e, ct))
            {
                // The router's silo (the gateway we are connected to) may be the one that died.
                why = "no worker is reachable";
                _log.LogDebug("router unavailable ({Error}); retrying", e.Message);
            }
            if (DateTime.UtcNow >= deadline) throw new OverloadedException(why, RetryAfter);
            await Task.Delay(250, ct);
        }
    }

    /// <summary>
    /// The next delta of a stream, or a failure as soon as it is known not to come: at once when the
    /// worker's silo is declared dead, and <see cref="StaleAfterDeath"/> after the call went out when
    /// another silo died meanwhile (the call may have been relayed by its gateway).
    /// </summary>
    private async Task<bool> AwaitMoveAsync(Task<bool> pending, CancellationToken ownDeath, CancellationToken overdue)
    {
        if (pending.IsCompleted) return await pending;
        long issued = System.Diagnostics.Stopwatch.GetTimestamp();
        var anyDeath = _watcher.NextDeath;
        using (var either = CancellationTokenSource.CreateLinkedTokenSource(ownDeath, anyDeath, overdue))
        {
            try { return await pending.WaitAsync(either.Token); }
            catch (OperationCanceledException) when (either.IsCancellationRequested)
            {
                if (pending.IsCompleted) return await pending;
                if (ownDeath.IsCancellationRequested) throw;
                overdue.ThrowIfCancellationRequested();
            }
        }
        var left = StaleAfterDeath - System.Diagnostics.Stopwatch.GetElapsedTime(issued);
        if (left > TimeSpan.Zero)
        {
            try { return await pending.WaitAsync(left, ownDeath); }
            catch (TimeoutException) { /* given up below */ }
        }
        throw new TimeoutException($"no answer {StaleAfterDeath.TotalSeconds:F0} s after a call that was out when a silo died (it may have been relayed by that silo)");
    }

    /// <summary>Anything but bad input or the caller's own cancellation is the worker's fault: try another one.</summary>
    private static bool IsWorkerFailure(Exception e, CancellationToken ct) =>
        e is not (ArgumentException or InvalidRequestException or InvalidGenerationRequestException or OverloadedException or WorkerBusyException
            or WorkerQueueFullException or TooManyRequestsException or FirstTokenTimeoutException or GenerationFailedException)
        && !(e is OperationCanceledException && ct.IsCancellationRequested);

    private static async Task DisposeQuietlyAsync(IAsyncEnumerator<TokenDelta> stream)
    {
        try { await stream.DisposeAsync(); }
        catch (Exception) { /* the silo is dead; nothing to release on our side */ }
    }

    public void Dispose() => _watcher.Dispose();

    private static ulong NewSeed() => BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
}
