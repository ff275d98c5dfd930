using System.Runtime.InteropServices;

namespace Loom.Silo.Blocks;

/// <summary>
/// Paged KV allocation with automatic prefix caching (vLLM v1's KVCacheManager, one attention group).
/// Sequences get blocks one block_size at a time as they grow; full blocks are content-hashed so a new
/// sequence whose prompt starts the same reuses them; blocks are shared by refcount (prefix hits, forks)
/// and return to the pool's LRU free queue when their last holder frees them.
/// </summary>
public sealed class KvCacheManager : IKvCacheManager
{
    private readonly BlockPool _pool;
    private readonly Dictionary<long, SequenceBlocks> _seqs = new();
    private readonly Stack<SequenceBlocks> _spare = new();
    private readonly List<KvBlock> _scratch = new();
    private long _prefixQueries, _prefixHits;

    // A waiting request that does not fit is looked up again every step; its lookup counts in the
    // prefix-cache metrics only once, when the allocation right after it succeeds.
    private (long Seq, int Queried, int Hit)? _lastLookup;

    // Σ over sequences of NumTokens and of Blocks.Count. Their gap is the unfilled tail of each
    // sequence's last block, which is never shared (hits and forks share only full blocks), so
    // UsedSlots = physical held slots − that gap counts every physical slot once.
    private long _tokensHeld, _blockRefsHeld;

    public KvCacheManager(int numBlocks, int blockSize, bool enablePrefixCaching = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        BlockSize = blockSize;
        _pool = new BlockPool(numBlocks, enablePrefixCaching);
    }

    public int BlockSize { get; }
    public int TotalBlocks => _pool.TotalBlocks;
    public int NumFreeBlocks => _pool.NumFreeBlocks;
    public bool EnablePrefixCaching => _pool.EnableCaching;

    /// <summary>The underlying pool, for tests and diagnostics; the scheduler goes through this manager.</summary>
    internal BlockPool Pool => _pool;

    public (IReadOnlyList<KvBlock> Blocks, int NumComputedTokens) GetComputedBlocks(long seq, ReadOnlySpan<int> tokens, ulong salt)
    {
        if (!EnablePrefixCaching || tokens.Length == 0) return (Array.Empty<KvBlock>(), 0);
        if (_seqs.ContainsKey(seq))
            throw new InvalidOperationException($"Sequence {seq} already holds blocks; look up its prefix before its first allocation.");

        // At most (len-1)/bs blocks: the last prompt token is always recomputed, because the step that
        // processes it is the one that yields the logits for the first new token.
        int maxBlocks = (tokens.Length - 1) / BlockSize;
        List<KvBlock>? hits = null;
        BlockHash? parent = null;
        for (int i = 0; i < maxBlocks; i++)
        {
            var h = BlockHash.Compute(parent, tokens.Slice(i * BlockSize, BlockSize), salt);
            var b = _pool.GetCachedBlock(h);
            if (b is null) break; // chained hashes: a miss here means every later block misses too
            (hits ??= new List<KvBlock>(maxBlocks)).Add(b);
            parent = h;
        }
        int computed = (hits?.Count ?? 0) * BlockSize;
        _lastLookup = (seq, tokens.Length, computed);
        return (hits is null ? Array.Empty<KvBlock>() : hits, computed);
    }

    public bool AllocateSlots(long seq, int numNewTokens, IReadOnlyList<KvBlock>? newComputedBlocks = null, int numNewComputedTokens = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numNewTokens);
        newComputedBlocks ??= Array.Empty<KvBlock>();
        if (numNewComputedTokens != newComputedBlocks.Count * BlockSize)
            throw new ArgumentException($"{numNewComputedTokens} computed tokens do not fill {newComputedBlocks.Count} blocks of {BlockSize}.", nameof(numNewComputedTokens));
        bool exists = _seqs.TryGetValue(seq, out var st);
        if (exists && newComputedBlocks.Count > 0)
            throw new InvalidOperationException($"Sequence {seq} already holds blocks; computed blocks are only taken at its first allocation.");

        int heldBlocks = st?.Blocks.Count ?? 0;
        int heldTokens = st?.NumTokens ?? 0;
        long total = (long)heldTokens + numNewComputedTokens + numNewTokens;
        if (total > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(numNewTokens));
        int need = Math.Max(0, CeilDiv((int)total, BlockSize) - heldBlocks - newComputedBlocks.Count);

        // Touching a free cached hit pulls it out of the free queue, so it costs a free block too.
        int evictableHits = 0;
        for (int i = 0; i < newComputedBlocks.Count; i++)
        {
            var b = newComputedBlocks[i];
            if (b.Hash is null)
                throw new InvalidOperationException($"{b} was evicted between GetComputedBlocks and AllocateSlots.");
            if (b.RefCount == 0) evictableHits++;
        }
        if (need + evictableHits > _pool.NumFreeBlocks) return false;

        if (!exists)
        {
            st = _spare.Count > 0 ? _spare.Pop() : new SequenceBlocks();
            _seqs.Add(seq, st);
        }
        // Touch hits before popping new blocks so the pops cannot evict them.
        for (int i = 0; i < newComputedBlocks.Count; i++)
        {
            var b = newComputedBlocks[i];
            _pool.Touch(b);
            st!.Add(b);
            st.Hashes.Add(b.Hash!.Value);
        }
        _scratch.Clear();
        if (!_pool.TryAllocate(need, _scratch))
            throw new InvalidOperationException("Free-block count changed during allocation."); // unreachable
        foreach (var b in _scratch) st!.Add(b);
        _scratch.Clear();

        st!.NumTokens = (int)total;
        _tokensHeld += total - heldTokens;
        _blockRefsHeld += st.Blocks.Count - heldBlocks;
        if (!exists && _lastLookup is { } lookup && lookup.Seq == seq)
        {
            _prefixQueries += lookup.Queried;
            _prefixHits += lookup.Hit;
            _lastLookup = null;
        }
        return true;
    }

    public void CacheBlocks(long seq, ReadOnlySpan<int> allTokens, int numTokensWithKv, ulong salt)
    {
        if (!EnablePrefixCaching) return;
        var st = Get(seq);
        if (numTokensWithKv < 0 || numTokensWithKv > st.NumTokens || numTokensWithKv > allTokens.Length)
            throw new ArgumentOutOfRangeException(nameof(numTokensWithKv),
                $"{numTokensWithKv} tokens with KV, but sequence {seq} holds slots for {st.NumTokens} and {allTokens.Length} tokens were given.");

        int full = numTokensWithKv / BlockSize;
        for (int i = st.Hashes.Count; i < full; i++)
        {
            BlockHash? parent = i == 0 ? null : st.Hashes[i - 1];
            var h = BlockHash.Compute(parent, allTokens.Slice(i * BlockSize, BlockSize), salt);
            var b = st.Blocks[i];
            if (b.Hash is { } existing)
            {
                // A block shared by a fork may have been registered by its other holder.
                if (existing != h)
                    throw new InvalidOperationException($"{b} is cached with a different prefix than sequence {seq} holds.");
            }
            else
            {
                _pool.TryCacheBlock(b, h); // false: a twin block already serves this prefix
            }
            st.Hashes.Add(h);
        }
    }

    public void Free(long seq)
    {
        if (!_seqs.Remove(seq, out var st))
            throw new InvalidOperationException($"Sequence {seq} holds no blocks (double free?).");
        // Tail first: the queue evicts from its head, so the sequence's last blocks — the least likely
        // to be a prefix someone else shares — go before its first ones.
        for (int i = st.Blocks.Count - 1; i >= 0; i--) _pool.Free(st.Blocks[i]);
        _tokensHeld -= st.NumTokens;
        _blockRefsHeld -= st.Blocks.Count;
        st.Clear();
        _spare.Push(st);
    }

    public ReadOnlySpan<int> BlockTable(long seq) => CollectionsMarshal.AsSpan(Get(seq).BlockIds);
    public int NumBlocksOf(long seq) => _seqs.TryGetValue(seq, out var st) ? st.Blocks.Count : 0;
    public int NumTokensOf(long seq) => _seqs.TryGetValue(seq, out var st) ? st.NumTokens : 0;
    public bool Contains(long seq) => _seqs.ContainsKey(seq);
    public int RefCountOf(int blockId) => _pool[blockId].RefCount;

    /// <summary>The blocks of <paramref name="seq"/> in token order (tests, diagnostics).</summary>
    public IReadOnlyList<KvBlock> BlocksOf(long seq) => Get(seq).Blocks;

    public long ReservedSlots => (long)_pool.NumUsedBlocks * BlockSize;
    public long UsedSlots => ReservedSlots - (_blockRefsHeld * BlockSize - _tokensHeld);

    public KvCacheStats Stats => new(
        _pool.TotalBlocks, _pool.NumFreeBlocks, _pool.NumUsedBlocks, _pool.NumCachedFreeBlocks,
        _prefixQueries, _prefixHits, ReservedSlots, UsedSlots);

    public bool ResetPrefixCache() => _pool.ResetPrefixCache();

    public void CheckInvariants()
    {
        _pool.CheckInvariants();
        // Refcounts must equal the number of block tables holding each block exactly: more means a
        // leak, fewer means a block could be handed out while still in use.
        var holders = new int[_pool.TotalBlocks];
        long tokens = 0, refs = 0;
        foreach (var (seq, st) in _seqs)
        {
            if (st.Blocks.Count != CeilDiv(st.NumTokens, BlockSize))
                throw new InvalidOperationException($"Sequence {seq}: {st.Blocks.Count} blocks for {st.NumTokens} tokens.");
            if (st.Hashes.Count > st.Blocks.Count)
                throw new InvalidOperationException($"Sequence {seq}: more hashes than blocks.");
            for (int i = 0; i < st.Blocks.Count; i++)
            {
                var b = st.Blocks[i];
                if (st.BlockIds[i] != b.BlockId) throw new InvalidOperationException($"Sequence {seq}: block table out of sync.");
                holders[b.BlockId]++;
                if (i < st.Hashes.Count && b.Hash is { } h && h != st.Hashes[i])
                    throw new InvalidOperationException($"Sequence {seq}: {b} cached under another prefix.");
            }
            tokens += st.NumTokens;
            refs += st.Blocks.Count;
        }
        for (int id = 0; id < holders.Length; id++)
            if (holders[id] != _pool[id].RefCount)
                throw new InvalidOperationException($"{_pool[id]} is held by {holders[id]} sequences.");
        if (tokens != _tokensHeld || refs != _blockRefsHeld)
            throw new InvalidOperationException("Slot counters out of sync.");
        if (_pool.NumFreeBlocks + _pool.NumUsedBlocks != _pool.TotalBlocks)
            throw new InvalidOperationException("free + used != total.");
    }

    private SequenceBlocks Get(long seq) =>
        _seqs.TryGetValue(seq, out var st) ? st : throw new InvalidOperationException($"Sequence {seq} holds no blocks.");

    private static int CeilDiv(int a, int b) => (a + b - 1) / b;
}
