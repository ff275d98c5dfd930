namespace Loom.Silo.Blocks;

/// <summary>A snapshot of a KV cache manager's occupancy and prefix-cache counters.</summary>
/// <param name="TotalBlocks">Blocks in the pool.</param>
/// <param name="FreeBlocks">Blocks with no holder, cached-but-free ones included.</param>
/// <param name="UsedBlocks">Blocks with refcount &gt; 0; FreeBlocks + UsedBlocks == TotalBlocks.</param>
/// <param name="CachedFreeBlocks">Free blocks still holding a findable prefix (evictable).</param>
/// <param name="PrefixQueries">Prompt tokens looked up in the prefix cache (vLLM's prefix_cache_queries).</param>
/// <param name="PrefixHits">Of those, tokens served from cache (vLLM's prefix_cache_hits).</param>
/// <param name="ReservedSlots">Token slots in held blocks (what requests occupy physically).</param>
/// <param name="UsedSlots">Of those, slots that hold or are allocated for a token.</param>
public readonly record struct KvCacheStats(
    int TotalBlocks,
    int FreeBlocks,
    int UsedBlocks,
    int CachedFreeBlocks,
    long PrefixQueries,
    long PrefixHits,
    long ReservedSlots,
    long UsedSlots)
{
    /// <summary>Fraction of blocks held (vLLM's kv_cache_usage_perc).</summary>
    public double Usage => TotalBlocks == 0 ? 0 : (double)UsedBlocks / TotalBlocks;

    public double PrefixHitRate => PrefixQueries == 0 ? 0 : (double)PrefixHits / PrefixQueries;

    /// <summary>Reserved-but-unused fraction of the held slots: internal fragmentation for paged
    /// allocation (under one block per sequence), the unused tail of every reservation for contiguous.</summary>
    public double KvWaste => ReservedSlots == 0 ? 0 : 1.0 - (double)UsedSlots / ReservedSlots;
}
