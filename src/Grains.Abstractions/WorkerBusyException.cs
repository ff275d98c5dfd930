using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// The worker's batch is full and the request asked not to queue (<see cref="GenerationRequest.RefuseIfFull"/>):
/// the gateway tries another worker, and queues only once every worker has said this.
/// </summary>
[GenerateSerializer]
public sealed class WorkerBusyException(string message) : Exception(message);
