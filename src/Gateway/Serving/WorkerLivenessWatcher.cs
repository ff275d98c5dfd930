using Loom.Grains.Abstractions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Runtime;

namespace Loom.Gateway.Serving;

/// <summary>
/// Tells in-flight streams when the silo of their worker is declared dead, so they fail over as
/// soon as membership knows (about 1–2 s with <c>LoomClusterDefaults</c>) instead of waiting out
/// the response timeout. While any stream is watched it polls the cluster's membership table
/// through the management grain; only <see cref="SiloStatus.Dead"/> counts, so a silo that is
/// shutting down gracefully drains its own streams undisturbed.
/// <para>Any silo's death also fires <see cref="NextDeath"/>: a call to a live worker may have
/// been relayed by the dead silo's gateway, and its answer will never come (Orleans clients only
/// fail such calls at the response timeout).</para>
/// </summary>
public sealed class WorkerLivenessWatcher : IDisposable
{
    private readonly IGrainFactory _grains;
    private readonly TimeSpan _period;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, CancellationTokenSource> _death = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<string> _seenDead = [];
    private CancellationTokenSource _anyDeath = new();
    private bool _baselined;
    private int _watchers;
    private Task? _loop;

    public WorkerLivenessWatcher(IGrainFactory grains, TimeSpan? period = null, ILogger? log = null)
    {
        _grains = grains;
        _period = period ?? TimeSpan.FromMilliseconds(250);
        _log = log ?? NullLogger.Instance;
    }

    /// <summary>Silos declared dead so far (worker keys).</summary>
    public int DeadCount { get { lock (_gate) return _death.Values.Count(c => c.IsCancellationRequested); } }

    /// <summary>Whether <paramref name="workerKey"/>'s silo has been seen declared dead.</summary>
    public bool IsDead(string workerKey)
    {
        lock (_gate) return _death.TryGetValue(workerKey, out var cts) && cts.IsCancellationRequested;
    }

    /// <summary>Fires when the next silo, any silo, is seen declared dead (silos dead before the first poll do not count).</summary>
    public CancellationToken NextDeath { get { lock (_gate) return _anyDeath.Token; } }

    /// <summary>Watches one worker (keyed by its silo address) until the lease is disposed; the lease's token fires when that silo is dead.</summary>
    public Lease Watch(string workerKey)
    {
        lock (_gate)
        {
            if (!_death.TryGetValue(workerKey, out var cts)) _death[workerKey] = cts = new CancellationTokenSource();
            _watchers++;
            if (_loop is null || _loop.IsCompleted) _loop = Task.Run(PollAsync);
            return new Lease(this, cts.Token);
        }
    }

    private void Release()
    {
        lock (_gate) _watchers--;
    }

    private async Task PollAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            lock (_gate)
            {
                if (_watchers == 0)
                {
                    _loop = null;
                    return;
                }
            }

            try
            {
                var hosts = await _grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: false).WaitAsync(TimeSpan.FromSeconds(2), _stop.Token);
                bool newDeath = false;
                foreach (var (silo, status) in hosts)
                {
                    if (status != SiloStatus.Dead) continue;
                    CancellationTokenSource? cts;
                    lock (_gate)
                    {
                        // Dead rows stay in the membership table: only deaths after the first poll are news.
                        newDeath |= _seenDead.Add(silo.ToParsableString()) && _baselined;
                        _death.TryGetValue(silo.ToParsableString(), out cts);
                    }
                    if (cts is { IsCancellationRequested: false })
                    {
                        _log.LogWarning("silo {Silo} is dead; failing over its streams", silo.ToParsableString());
                        cts.Cancel();
                    }
                }
                CancellationTokenSource? fired = null;
                lock (_gate)
                {
                    _baselined = true;
                    if (newDeath) (fired, _anyDeath) = (_anyDeath, new CancellationTokenSource());
                }
                // Not disposed: streams may still register on its (cancelled) token.
                fired?.Cancel();
            }
            catch (Exception e) when (e is not OperationCanceledException || !_stop.IsCancellationRequested)
            {
                // The management grain may sit on the silo that just died; the next poll asks again.
                _log.LogDebug("membership poll failed: {Error}", e.Message);
            }

            try { await Task.Delay(_period, _stop.Token); }
            catch (OperationCanceledException) { return; }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        lock (_gate)
            foreach (var cts in _death.Values) cts.Dispose();
    }

    /// <summary>One watched stream; <see cref="Token"/> fires when its worker's silo is dead.</summary>
    public readonly struct Lease(WorkerLivenessWatcher owner, CancellationToken token) : IDisposable
    {
        public CancellationToken Token { get; } = token;

        public void Dispose() => owner?.Release();
    }
}
