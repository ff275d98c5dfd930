using Loom.Grains.Abstractions;
using Loom.Silo.Routing;
using Orleans.Concurrency;

namespace Loom.Silo.Routing;

/// <summary>
/// The gateway grain: one local activation per silo (a stateless worker, so picks never cross the
/// network), deciding with the silo's <see cref="WorkerDirectory"/> and <see cref="RoutingPolicy"/>.
/// </summary>
[StatelessWorker(1)]
public sealed class RouterGrain(WorkerDirectory directory) : Grain, IRouterGrain
{
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        directory.Start();
        // A fresh view before the first pick, not 250 ms later.
        if (directory.Snapshot().Count == 0) await directory.RefreshAsync();
    }

    public Task RegisterWorkerAsync(string workerKey)
    {
        directory.Register(workerKey);
        return Task.CompletedTask;
    }

    public Task UnregisterWorkerAsync(string workerKey)
    {
        directory.Unregister(workerKey);
        return Task.CompletedTask;
    }

    public Task<string?> PickWorkerAsync(IReadOnlyList<int> promptTokenIds, IReadOnlyList<string>? exclude = null) =>
        Task.FromResult(directory.Pick(promptTokenIds, exclude));

    public Task ReleaseWorkerAsync(string workerKey)
    {
        directory.Release(workerKey);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyDictionary<string, WorkerStats>> GetWorkerStatsAsync() => Task.FromResult(directory.Snapshot());

    public Task<IReadOnlyDictionary<string, string>> GetUnavailableWorkersAsync() => Task.FromResult(directory.Unavailable());
}
