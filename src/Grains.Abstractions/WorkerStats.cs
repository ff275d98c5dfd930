namespace Loom.Grains.Abstractions;

/// <summary>A worker's load, as the router and /metrics see it.</summary>
public sealed record WorkerStats(
    int Running,
    int Waiting,
    int TotalBlocks,
    int FreeBlocks,
    int UsedBlocks,
    int CachedBlocks,
    double KvUsage,
    long PrefixCacheQueries,
    long PrefixCacheHits,
    long Preemptions,
    long PromptTokens,
    long GenerationTokens);
