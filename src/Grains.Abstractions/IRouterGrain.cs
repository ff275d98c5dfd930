using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// The gateway grain: a stateless worker (one local activation per host) that knows every worker's
/// load and picks one per request, by prefix affinity first and least load second.
/// </summary>
public interface IRouterGrain : IGrainWithIntegerKey
{
    /// <summary>A worker announces itself (at silo start); every router activation learns of it.</summary>
    Task RegisterWorkerAsync(string workerKey);

    Task UnregisterWorkerAsync(string workerKey);

    /// <summary>
    /// The worker key to send <paramref name="promptTokenIds"/> to, skipping <paramref name="exclude"/>
    /// (workers that just failed this request); null when no worker is left.
    /// </summary>
    Task<string?> PickWorkerAsync(IReadOnlyList<int> promptTokenIds, IReadOnlyList<string>? exclude = null);

    /// <summary>
    /// A request routed to <paramref name="workerKey"/> has finished: until the worker's next load
    /// report the router counts its batch one lighter, so a freed slot is used at once.
    /// </summary>
    [Orleans.Concurrency.OneWay]
    Task ReleaseWorkerAsync(string workerKey);

    /// <summary>Every known worker's last load report.</summary>
    Task<IReadOnlyDictionary<string, WorkerStats>> GetWorkerStatsAsync();

    /// <summary>Members that are not offered work and why (sick, draining, loading), for /health.</summary>
    Task<IReadOnlyDictionary<string, string>> GetUnavailableWorkersAsync();
}
