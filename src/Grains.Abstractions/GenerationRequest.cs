namespace Loom.Grains.Abstractions;

/// <summary>
/// What the gateway asks a worker for: token ids only (the gateway owns text). For failover the
/// gateway resubmits with <c>ResumeTokenIds</c> (what was already streamed) and <c>Seed</c> set
/// to the original seed, so seeded sampling continues exactly where it stopped.
/// </summary>
public sealed record GenerationRequest(
    string RequestId,
    IReadOnlyList<int> PromptTokenIds,
    SamplingParams Sampling,
    ulong CacheSalt = 0,
    IReadOnlyList<int>? ResumeTokenIds = null);

/// <summary>What a worker serves, so a gateway needs no access to the model folder.</summary>
public sealed record ModelInfo(
    string Name,
    string Architecture,
    int MaxModelLen,
    int VocabSize,
    IReadOnlyList<int> EosTokenIds,
    string TokenizerJson,
    string? TokenizerConfigJson);
