using Loom.Grains.Abstractions;

namespace Loom.Gateway.Serving;

/// <summary>
/// The gateway's view of the cluster: the HTTP and gRPC front doors talk only to this. The
/// Orleans implementation routes through the router grain; tests use in-process fakes.
/// </summary>
public interface IGenerationClient
{
    Task<ModelInfo> GetModelInfoAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Streams the request's token deltas. Throws <see cref="ArgumentException"/> subclasses with
    /// a parameter name for bad input, and <see cref="OverloadedException"/> when no worker can take it.
    /// Cancelling the token aborts the request on its worker.
    /// </summary>
    IAsyncEnumerable<TokenDelta> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken);

    Task<IReadOnlyList<WorkerStats>> GetWorkerStatsAsync(CancellationToken cancellationToken);
}

/// <summary>No worker can take the request now; the HTTP layer answers 503 with Retry-After.</summary>
public sealed class OverloadedException(string message, TimeSpan retryAfter) : Exception(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}
