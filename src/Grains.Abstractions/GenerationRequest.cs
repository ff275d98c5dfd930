using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// What the gateway asks a worker for: token ids only (the gateway owns text).
/// </summary>
/// <remarks>
/// Failover: the gateway resubmits the same request (same prompt, same <see cref="SamplingParams"/>,
/// so MaxTokens/MinTokens still count from the original start) with <c>ResumeTokenIds</c> = the
/// tokens already streamed. The worker appends them to the prompt, counts them as output and
/// continues the sample's random stream at output index k. That is exact only when
/// <c>Sampling.Seed</c> is set, so the gateway gives every unseeded request a random seed before
/// the first submission. Resuming is for n = 1; the gateway resumes each sample i of an n &gt; 1
/// request as its own n = 1 request with seed + i.
/// <para><c>RefuseIfFull</c>: the worker answers <see cref="WorkerBusyException"/> instead of queueing
/// when its batch is full. Routers see load a few hundred ms late, so the gateway asks this until
/// every worker has refused; a worker at capacity thus sends the request elsewhere.</para>
/// </remarks>
[GenerateSerializer, Immutable]
public sealed record GenerationRequest(
    [property: Id(0)] string RequestId,
    [property: Id(1)] IReadOnlyList<int> PromptTokenIds,
    [property: Id(2)] SamplingParams Sampling,
    [property: Id(3)] ulong CacheSalt = 0,
    [property: Id(4)] IReadOnlyList<int>? ResumeTokenIds = null,
    [property: Id(5)] bool RefuseIfFull = false);

/// <summary>What a worker serves, so a gateway needs no access to the model folder.</summary>
[GenerateSerializer, Immutable]
public sealed record ModelInfo(
    [property: Id(0)] string Name,
    [property: Id(1)] string Architecture,
    [property: Id(2)] int MaxModelLen,
    [property: Id(3)] int VocabSize,
    [property: Id(4)] IReadOnlyList<int> EosTokenIds,
    [property: Id(5)] string TokenizerJson,
    [property: Id(6)] string? TokenizerConfigJson);
