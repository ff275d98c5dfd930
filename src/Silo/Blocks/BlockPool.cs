namespace Loom.Silo.Blocks;

/// <summary>
/// The fixed pool of KV blocks: hands out free blocks, takes them back, and keeps the prefix cache
/// (content hash → full block). Cached blocks stay findable after their last holder frees them, until
/// the LRU free queue hands them out again — that reuse is the eviction.
/// </summary>
/// <remarks>
/// Only <see cref="IKvCacheManager"/> implementations talk to this; the scheduler never does. Not
/// thread-safe: one engine loop owns it. Unlike vLLM there is no reserved "null block": every block is
/// usable, and padding slots are expressed by the model runner, not by a placeholder block.
/// </remarks>
public sealed class BlockPool
{
    private readonly KvBlock[] _blocks;
    private readonly FreeBlockQueue _free;
    private readonly Dictionary<BlockHash, KvBlock> _cached = new();
    private int _cachedFree;

    public BlockPool(int numBlocks, bool enableCaching = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numBlocks);
        _blocks = new KvBlock[numBlocks];
        for (int i = 0; i < numBlocks; i++) _blocks[i] = new KvBlock(i);
        _free = new FreeBlockQueue(_blocks);
        EnableCaching = enableCaching;
    }

    public bool EnableCaching { get; }
    public int TotalBlocks => _blocks.Length;

    /// <summary>Blocks with no holder, cached ones included (they are evictable, hence allocatable).</summary>
    public int NumFreeBlocks => _free.Count;

    /// <summary>Blocks held by at least one request.</summary>
    public int NumUsedBlocks => _blocks.Length - _free.Count;

    /// <summary>Blocks registered in the prefix cache, held or free.</summary>
    public int NumCachedBlocks => _cached.Count;

    /// <summary>Free blocks that still hold a cached prefix (the evictable part of the cache).</summary>
    public int NumCachedFreeBlocks => _cachedFree;

    public KvBlock this[int blockId] => _blocks[blockId];

    /// <summary>The next block <see cref="TryAllocate"/> would hand out (and evict if cached).</summary>
    public KvBlock? NextToEvict => _free.First;

    /// <summary>The cached block holding the prefix whose last block hashes to <paramref name="hash"/>.</summary>
    public KvBlock? GetCachedBlock(BlockHash hash) =>
        EnableCaching && _cached.TryGetValue(hash, out var b) ? b : null;

    /// <summary>
    /// Pops <paramref name="count"/> blocks from the LRU head into <paramref name="into"/>, each with
    /// refcount 1, evicting their cached hashes. Returns false, changing nothing, if too few are free.
    /// </summary>
    public bool TryAllocate(int count, List<KvBlock> into)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > _free.Count) return false;
        for (int i = 0; i < count; i++)
        {
            var b = _free.PopFront();
            if (b.Hash is { } h)
            {
                // Reusing a cached block for new content: it must stop answering lookups first.
                _cached.Remove(h);
                b.Hash = null;
                _cachedFree--;
            }
            b.RefCount = 1;
            into.Add(b);
        }
        return true;
    }

    /// <summary>
    /// A new holder for an existing block (prefix-cache hit or fork). A free block leaves the free
    /// queue — from wherever it sits — so it can no longer be evicted.
    /// </summary>
    public void Touch(KvBlock block)
    {
        if (block.RefCount == 0)
        {
            _free.Remove(block);
            if (block.Hash is not null) _cachedFree--;
        }
        block.RefCount++;
    }

    public void Touch(IReadOnlyList<KvBlock> blocks)
    {
        for (int i = 0; i < blocks.Count; i++) Touch(blocks[i]);
    }

    /// <summary>
    /// Drops one holder. At zero the block goes to the free queue's tail (most recently used end);
    /// a cached block keeps its hash and stays findable until evicted. Callers free a request's blocks
    /// tail-first so its tail blocks — the least likely to be shared — are evicted before its head.
    /// </summary>
    public void Free(KvBlock block)
    {
        if (block.RefCount <= 0)
            throw new InvalidOperationException($"Double free of {block}.");
        if (--block.RefCount > 0) return;
        _free.Append(block);
        if (block.Hash is not null) _cachedFree++;
    }

    /// <summary>
    /// Registers a full, held block under its content hash. Returns false (block left uncached) when
    /// caching is off or another block already holds the same hash: vLLM keeps such duplicates too,
    /// but a single owner per hash keeps the map simple, and block ids are never swapped so block
    /// tables stay append-only.
    /// </summary>
    public bool TryCacheBlock(KvBlock block, BlockHash hash)
    {
        if (block.RefCount <= 0) throw new InvalidOperationException($"Caching a free block {block}.");
        if (block.Hash is not null) throw new InvalidOperationException($"{block} is already cached.");
        if (!EnableCaching || !_cached.TryAdd(hash, block)) return false;
        block.Hash = hash;
        return true;
    }

    /// <summary>
    /// Forgets every cached prefix (after a weight update, or between benchmark runs). Like vLLM it
    /// refuses while any block is held, since running requests would re-register stale content.
    /// </summary>
    public bool ResetPrefixCache()
    {
        if (NumUsedBlocks != 0) return false;
        foreach (var b in _cached.Values) b.Hash = null;
        _cached.Clear();
        _cachedFree = 0;
        return true;
    }

    /// <summary>The free queue head to tail (eviction order). Allocates; for tests and diagnostics.</summary>
    public IEnumerable<KvBlock> FreeBlocksInEvictionOrder() => _free.InOrder();

    /// <summary>
    /// Throws <see cref="InvalidOperationException"/> unless: every block is either held (refcount &gt; 0,
    /// not queued) or queued with refcount 0; the queue links are sound; each cached hash maps to a
    /// block carrying that hash and every hashed block is in the map; the cached-free count is exact.
    /// O(blocks): cheap enough for debug builds and tests, not for every step in production.
    /// </summary>
    public void CheckInvariants()
    {
        _free.CheckLinks(_blocks.Length);
        int queued = 0, hashed = 0, cachedFree = 0;
        foreach (var b in _blocks)
        {
            if (b.RefCount < 0) throw new InvalidOperationException($"{b} has a negative refcount.");
            if (b.InFreeQueue != (b.RefCount == 0))
                throw new InvalidOperationException($"{b}: queued={b.InFreeQueue} but refcount={b.RefCount}.");
            if (b.InFreeQueue) queued++;
            if (b.Hash is { } h)
            {
                hashed++;
                if (b.RefCount == 0) cachedFree++;
                if (!_cached.TryGetValue(h, out var owner) || !ReferenceEquals(owner, b))
                    throw new InvalidOperationException($"{b} carries a hash the cache does not map to it.");
            }
        }
        if (queued != _free.Count) throw new InvalidOperationException($"{queued} blocks queued, queue counts {_free.Count}.");
        if (hashed != _cached.Count) throw new InvalidOperationException($"{hashed} hashed blocks, cache map has {_cached.Count}.");
        foreach (var (h, b) in _cached)
            if (b.Hash != h) throw new InvalidOperationException($"Cache maps {h} to {b}.");
        if (cachedFree != _cachedFree) throw new InvalidOperationException($"{cachedFree} cached free blocks, counter says {_cachedFree}.");
        if (!EnableCaching && hashed != 0) throw new InvalidOperationException("Hashed blocks with caching off.");
    }
}
