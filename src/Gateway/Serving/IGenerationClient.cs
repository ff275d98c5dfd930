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
    /// Streams the request's token deltas. Throws <see cref="InvalidRequestException"/> (with the
    /// parameter's name) for bad input, <see cref="TooManyRequestsException"/> when every queue is
    /// full, and <see cref="OverloadedException"/> when no worker can take it; anything else is a 500.
    /// Cancelling the token aborts the request on its worker.
    /// </summary>
    IAsyncEnumerable<TokenDelta> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken);

    Task<IReadOnlyList<WorkerStats>> GetWorkerStatsAsync(CancellationToken cancellationToken);

    /// <summary>Workers that are members but not offered work, and why (sick, draining, loading): what /health reports.</summary>
    Task<IReadOnlyDictionary<string, string>> GetUnavailableWorkersAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string>());
}

/// <summary>No worker can take the request now; the HTTP layer answers 503 with Retry-After.</summary>
public sealed class OverloadedException(string message, TimeSpan retryAfter) : Exception(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>
/// The client's input is invalid: the only exception the HTTP and gRPC layers turn into a 400 (with
/// <see cref="Param"/>). Anything else that escapes is an internal error: a logged 500 whose message
/// says nothing internal.
/// </summary>
public sealed class InvalidRequestException(string message, string? param = null) : Exception(message)
{
    public string? Param { get; } = param;
}

/// <summary>
/// Every worker's queue is full (engine.max_waiting), or this gateway is at
/// gateway.max_concurrent_requests: the HTTP layer answers 429 with Retry-After, like TGI's
/// "Model is overloaded"; gRPC answers RESOURCE_EXHAUSTED.
/// </summary>
public sealed class TooManyRequestsException(string message, TimeSpan retryAfter) : Exception(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>No worker produced a first token within gateway.first_token_timeout_s: a 504 that says so.</summary>
public sealed class FirstTokenTimeoutException(string message) : Exception(message);
