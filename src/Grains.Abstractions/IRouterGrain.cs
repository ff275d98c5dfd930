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

    /// <summary>Every known worker's last load report.</summary>
    Task<IReadOnlyDictionary<string, WorkerStats>> GetWorkerStatsAsync();
}
