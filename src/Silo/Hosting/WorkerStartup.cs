using Loom.Grains.Abstractions;
using Loom.Silo.Routing;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Loom.Silo.Hosting;

/// <summary>
/// Silo start-up: load the model before the silo joins the cluster (so no one routes to a worker
/// that cannot serve), then, once active, activate the local worker grain, register it with the
/// router and start the load view. On stop, unregister first so new requests go elsewhere.
/// </summary>
internal sealed class WorkerStartup(WorkerEngine worker, WorkerDirectory directory, IGrainFactory grains, ILocalSiloDetails silo,
    ILogger<WorkerStartup> log) : ILifecycleParticipant<ISiloLifecycle>
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

    private async Task StopAsync(CancellationToken ct)
    {
        try { await grains.GetGrain<IRouterGrain>(0).UnregisterWorkerAsync(Key); }
        catch (Exception e) { log.LogDebug(e, "unregistering worker {Key} failed; membership will drop it", Key); }
        await directory.StopAsync();
    }
}
