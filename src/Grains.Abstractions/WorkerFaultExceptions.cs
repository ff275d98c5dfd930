using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// The worker cannot serve now (its model is not loaded, it is draining, or it is sick after
/// repeated step failures or a device error): the gateway resubmits the request elsewhere, from
/// the tokens already streamed.
/// </summary>
[GenerateSerializer]
public sealed class WorkerUnavailableException(string message) : Exception(message);

/// <summary>
/// The engine step that was running this request failed (the worker itself may be fine). The
/// gateway tries the request once more on another worker; a request whose step fails on two
/// workers ends with a 500, since it is likely the request that breaks the step.
/// </summary>
[GenerateSerializer]
public sealed class GenerationStepFailedException(string message) : Exception(message);

/// <summary>
/// The worker's queue is full (engine.max_waiting sequences beyond its batch): the gateway tries
/// another worker, and answers 429 once every worker has said this.
/// </summary>
[GenerateSerializer]
public sealed class WorkerQueueFullException(string message) : Exception(message);
