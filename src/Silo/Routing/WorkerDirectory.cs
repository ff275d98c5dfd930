using System.Collections.Concurrent;
using Loom.Grains.Abstractions;
using Loom.Silo.Configuration;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Loom.Silo.Routing;

/// <summary>
/// A silo's view of every worker's load, read by its router grain. Workers are the active silos of
/// the membership (one worker each; a dead silo drops out as soon as membership declares it) plus
/// registrations; every ~250 ms each worker's stats are fetched. Between refreshes the router's
/// own picks count as pending load, so a burst does not all land on one stale "least loaded" worker.
/// The loop runs outside grain turns so a slow or dead worker never blocks a pick.
/// </summary>
public sealed class WorkerDirectory(IClusterMembershipService membership, IGrainFactory grains, LoomOptions options, ILogger<WorkerDirectory> log)
{
    public static readonly TimeSpan RefreshPeriod = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan StatsTimeout = TimeSpan.FromSeconds(1);
    private const long StaleLimitMs = 5000;

    private sealed class Entry
    {
        public WorkerStats? Stats;
        public string? Unavailable;
        public int Pending;
        public int Released;
        public long ReportedAt;
    }

    private readonly ConcurrentDictionary<string, Entry> _workers = new();
    private readonly ConcurrentDictionary<string, byte> _unregistered = new();
    private readonly RoutingPolicy _policy = new(options.Engine.BlockSize);

    // The last PickHistory decision times (Stopwatch ticks), written lock-free: the router's own overhead, for the benchmark.
    private const int PickHistory = 4096;
    private readonly long[] _pickTicks = new long[PickHistory];
    private long _picks;
    private CancellationTokenSource? _stop;
    private Task? _loop;

    public void Start()
    {
        lock (_workers)
        {
            if (_loop is not null) return;
            _stop = new CancellationTokenSource();
            _loop = Task.Run(() => RunAsync(_stop.Token));
        }
    }

    public async Task StopAsync()
    {
        _stop?.Cancel();
        if (_loop is { } loop) await loop.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public void Register(string key)
    {
        _unregistered.TryRemove(key, out _);
        _workers.TryAdd(key, new Entry());
    }

    public void Unregister(string key)
    {
        _unregistered[key] = 0;
        _workers.TryRemove(key, out _);
    }

    public string? Pick(IReadOnlyList<int> prompt, IReadOnlyList<string>? exclude)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var loads = new List<WorkerLoad>(_workers.Count);
        foreach (var (key, e) in _workers)
        {
            // A worker not reporting yet (model loading, or just joined) is not offered.
            if (e.Stats is not { } s) continue;
            loads.Add(LoadAccounting.Effective(key, s, Volatile.Read(ref e.Pending), Volatile.Read(ref e.Released)));
        }
        var key0 = _policy.Pick(loads, prompt, exclude is { Count: > 0 } ? exclude.ToHashSet() : null);
        if (key0 is not null && _workers.TryGetValue(key0, out var chosen)) Interlocked.Increment(ref chosen.Pending);
        long n = Interlocked.Increment(ref _picks);
        _pickTicks[(n - 1) % PickHistory] = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        return key0;
    }

    /// <summary>How long the most recent picks (up to 4096) took inside this router: the load view plus the policy.</summary>
    public IReadOnlyList<double> RecentPickMilliseconds()
    {
        int n = (int)Math.Min(Interlocked.Read(ref _picks), PickHistory);
        return [.. _pickTicks.AsSpan(0, n).ToArray().Select(t => t * 1000.0 / System.Diagnostics.Stopwatch.Frequency)];
    }

    /// <summary>A request on <paramref name="key"/> finished (see <see cref="IRouterGrain.ReleaseWorkerAsync"/>).</summary>
    public void Release(string key)
    {
        if (!_workers.TryGetValue(key, out var e)) return;
        // A request routed since the last report and already finished is no load at all: take it
        // off the pending count (else a burst's picks would saturate the worker in this view until a
        // report arrives, which on a loaded host can take seconds); otherwise off the reported batch.
        while (true)
        {
            int pending = Volatile.Read(ref e.Pending);
            if (pending <= 0) { Interlocked.Increment(ref e.Released); return; }
            if (Interlocked.CompareExchange(ref e.Pending, pending - 1, pending) == pending) return;
        }
    }

    public IReadOnlyDictionary<string, WorkerStats> Snapshot() =>
        _workers.Where(w => w.Value.Stats is not null).ToDictionary(w => w.Key, w => w.Value.Stats!);

    /// <summary>Members not offered work, with the reason their last report failed.</summary>
    public IReadOnlyDictionary<string, string> Unavailable() =>
        _workers.Where(w => w.Value.Stats is null && w.Value.Unavailable is not null).ToDictionary(w => w.Key, w => w.Value.Unavailable!);

    /// <summary>One refresh now (the first pick of a fresh router need not wait for the loop).</summary>
    public async Task RefreshAsync()
    {
        var active = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active)
            .Select(m => m.SiloAddress.ToParsableString())
            .ToHashSet();
        foreach (var key in active)
            if (!_unregistered.ContainsKey(key)) _workers.TryAdd(key, new Entry());
        foreach (var key in _workers.Keys)
            if (!active.Contains(key)) _workers.TryRemove(key, out _);
        await Task.WhenAll(_workers.Select(w => RefreshOneAsync(w.Key, w.Value)));
    }

    private async Task RefreshOneAsync(string key, Entry entry)
    {
        try
        {
            var call = grains.GetGrain<IWorkerGrain>(key).GetStatsAsync();
            var stats = await call.WaitAsync(StatsTimeout);
            entry.Stats = stats;
            entry.Unavailable = null;
            entry.ReportedAt = Environment.TickCount64;
            Volatile.Write(ref entry.Pending, 0); // the report now includes what was routed to it
            Volatile.Write(ref entry.Released, 0); // ... and what finished
        }
        catch (TimeoutException) when (entry.Stats is not null && Environment.TickCount64 - entry.ReportedAt < StaleLimitMs)
        {
            // A slow answer on a busy host is not a dead worker: keep offering it on its last report
            // for a while (a dead silo leaves the membership view, which removes it at once).
            log.LogDebug("worker {Key} was slow to report; keeping its last load", key);
        }
        catch (Exception e)
        {
            // Unreachable, not loaded, draining or sick: stop offering it until it reports again.
            entry.Stats = null;
            entry.Unavailable = e is WorkerUnavailableException ? e.Message : $"not reachable ({e.GetType().Name})";
            log.LogDebug("worker {Key} did not report: {Error}", key, e.Message);
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(RefreshPeriod);
        do
        {
            try { await RefreshAsync(); }
            catch (Exception e) { log.LogWarning(e, "refreshing worker loads failed"); }
        }
        while (await timer.WaitForNextTickAsync(ct).AsTask().ContinueWith(t => !t.IsCanceled && t.Result, TaskScheduler.Default));
    }
}
