using Loom.Grains.Abstractions;
using Loom.Silo.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Loom.Silo.Worker;

/// <summary>
/// Silo start-up: load the model before the silo joins the cluster (so no one routes to a worker
/// that cannot serve), then, once active, activate the local worker grain, register it with the
/// router and start the load view. On stop (SIGTERM), drain: refuse new requests and load reports
/// (routers drop this worker within a refresh, callers resubmit elsewhere), let the requests in
/// flight finish within the host's shutdown timeout less a margin for Orleans' own shutdown, then
/// leave; streams still running then fail over on the gateway from the tokens they have.
/// </summary>
internal sealed class WorkerStartup(WorkerEngine worker, WorkerDirectory directory, IGrainFactory grains, ILocalSiloDetails silo,
    ILogger<WorkerStartup> log, IOptions<HostOptions>? hostOptions = null) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle)
    {
        lifecycle.Subscribe(nameof(WorkerStartup) + ".Load", ServiceLifecycleStage.RuntimeInitialize, ct => worker.LoadAsync(ct));
        lifecycle.Subscribe(nameof(WorkerStartup), ServiceLifecycleStage.Active, StartAsync, StopAsync);
    }

    private string Key => silo.SiloAddress.ToParsableString();

    private async Task StartAsync(CancellationToken ct)
    {
        await grains.GetGrain<IWorkerGrain>(Key).GetStatsAsync();
        directory.Start();
        await grains.GetGrain<IRouterGrain>(0).RegisterWorkerAsync(Key);
        log.LogInformation("worker {Key} registered", Key);
    }

    /// <summary>What the silo keeps of the host's shutdown timeout for leaving the cluster after the drain.</summary>
    private static readonly TimeSpan LeaveMargin = TimeSpan.FromSeconds(5);

    private async Task StopAsync(CancellationToken ct)
    {
        var timeout = hostOptions?.Value.ShutdownTimeout ?? TimeSpan.FromSeconds(30);
        var budget = timeout > LeaveMargin + TimeSpan.FromSeconds(1) ? timeout - LeaveMargin : TimeSpan.FromSeconds(1);
        var inFlight = worker.IsReady ? worker.Engine.GetStats() : null;
        log.LogInformation("worker {Key} draining: {Running} running, {Waiting} waiting; up to {Budget:F0} s", Key,
            inFlight?.Running ?? 0, inFlight?.Waiting ?? 0, budget.TotalSeconds);
        directory.Unregister(Key);
        bool drained = await worker.DrainAsync(budget, ct);
        log.LogInformation(drained ? "worker {Key} drained; leaving the cluster" : "worker {Key} drain budget spent; the rest fail over", Key);
        try { await grains.GetGrain<IRouterGrain>(0).UnregisterWorkerAsync(Key); }
        catch (Exception e) { log.LogDebug(e, "unregistering worker {Key} failed; membership will drop it", Key); }
        await directory.StopAsync();
    }
}
