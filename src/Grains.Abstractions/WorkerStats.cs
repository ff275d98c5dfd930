using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// A worker's load, as the router and /metrics see it, and what it runs on: <see cref="Device"/> is
/// "cpu", "cuda:NAME" or "simulated"; <see cref="Isa"/> the CPU kernels' instruction set ("avx2", ...), empty off the CPU;
/// <see cref="StructuredCacheBytes"/> what its compiled structured-output constraints keep (engine.structured_output_cache_bytes bounds it).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record WorkerStats(
    [property: Id(0)] int Running,
    [property: Id(1)] int Waiting,
    [property: Id(2)] int TotalBlocks,
    [property: Id(3)] int FreeBlocks,
    [property: Id(4)] int UsedBlocks,
    [property: Id(5)] int CachedBlocks,
    [property: Id(6)] double KvUsage,
    [property: Id(7)] long PrefixCacheQueries,
    [property: Id(8)] long PrefixCacheHits,
    [property: Id(9)] long Preemptions,
    [property: Id(10)] long PromptTokens,
    [property: Id(11)] long GenerationTokens,
    [property: Id(12)] int MaxNumSeqs = 0,
    [property: Id(13)] string Device = "",
    [property: Id(14)] string Isa = "",
    [property: Id(15)] long StructuredCacheBytes = 0);
