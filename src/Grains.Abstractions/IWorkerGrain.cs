using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// The one worker of a silo (keyed by the silo's address, pinned to it). Reentrant: many requests
/// stream at once. Breaking out of the stream, or cancelling the token, aborts the request and
/// frees its KV blocks.
/// </summary>
public interface IWorkerGrain : IGrainWithStringKey
{
    IAsyncEnumerable<TokenDelta> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken = default);

    Task<WorkerStats> GetStatsAsync();

    Task<ModelInfo> GetModelInfoAsync();
}
