using System.Runtime.InteropServices;

using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Benchmarks.Baselines;

/// <summary>
/// The baseline paged attention replaced: each sequence reserves room for max_model_len tokens
/// (ceil(max_model_len / block_size) blocks) at its first allocation, whatever it ends up using, and
/// nothing is shared — no prefix cache. It exists
/// for the benchmark's KV-waste comparison (<see cref="KvCacheStats.KvWaste"/>) and to show admission
/// failing once reservations, not tokens, exhaust the pool.
/// </summary>
/// <remarks>
/// The reserved blocks need not have adjacent ids: the waste being measured is reservation, not address
/// fragmentation, which would only make the baseline look worse.
/// </remarks>
public sealed class ContiguousKvCacheManager : IKvCacheManager
{
    private readonly BlockPool _pool;
    private readonly Dictionary<long, SequenceBlocks> _seqs = new();
    private readonly Stack<SequenceBlocks> _spare = new();
    private readonly List<KvBlock> _scratch = new();
    private long _tokensHeld;

    public ContiguousKvCacheManager(int numBlocks, int blockSize, int maxModelLen)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxModelLen);
        BlockSize = blockSize;
        MaxModelLen = maxModelLen;
        BlocksPerSequence = (maxModelLen + blockSize - 1) / blockSize;
        _pool = new BlockPool(numBlocks, enableCaching: false);
    }

    public int BlockSize { get; }
    public int MaxModelLen { get; }

    /// <summary>Blocks every sequence reserves up front.</summary>
    public int BlocksPerSequence { get; }

    public int TotalBlocks => _pool.TotalBlocks;
    public int NumFreeBlocks => _pool.NumFreeBlocks;
    public bool EnablePrefixCaching => false;

    /// <summary>Always a miss; the baseline has no prefix cache (and counts no queries).</summary>
    public (IReadOnlyList<KvBlock> Blocks, int NumComputedTokens) GetComputedBlocks(long seq, ReadOnlySpan<int> tokens, ulong salt) =>
        (Array.Empty<KvBlock>(), 0);

    public bool AllocateSlots(long seq, int numNewTokens, IReadOnlyList<KvBlock>? newComputedBlocks = null, int numNewComputedTokens = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numNewTokens);
        if ((newComputedBlocks?.Count ?? 0) != 0 || numNewComputedTokens != 0)
            throw new ArgumentException("The contiguous baseline has no prefix cache.", nameof(newComputedBlocks));
        bool exists = _seqs.TryGetValue(seq, out var st);
        long total = (long)(st?.NumTokens ?? 0) + numNewTokens;
        // Beyond max_model_len is a scheduler bug, not a capacity problem: preempting would not help.
        if (total > MaxModelLen)
            throw new InvalidOperationException($"Sequence {seq} would hold {total} tokens, over max_model_len {MaxModelLen}.");
        if (!exists)
        {
            _scratch.Clear();
            if (!_pool.TryAllocate(BlocksPerSequence, _scratch)) return false;
            st = _spare.Count > 0 ? _spare.Pop() : new SequenceBlocks();
            foreach (var b in _scratch) st.Add(b);
            _scratch.Clear();
            _seqs.Add(seq, st);
        }
        _tokensHeld += total - st!.NumTokens;
        st.NumTokens = (int)total;
        return true;
    }

    /// <summary>No-op: nothing is cached.</summary>
    public void CacheBlocks(long seq, ReadOnlySpan<int> allTokens, int numTokensWithKv, ulong salt) { }

    public void Free(long seq)
    {
        if (!_seqs.Remove(seq, out var st))
            throw new InvalidOperationException($"Sequence {seq} holds no blocks (double free?).");
        for (int i = st.Blocks.Count - 1; i >= 0; i--) _pool.Free(st.Blocks[i]);
        _tokensHeld -= st.NumTokens;
        st.Clear();
        _spare.Push(st);
    }

    public ReadOnlySpan<int> BlockTable(long seq) => CollectionsMarshal.AsSpan(Get(seq).BlockIds);
    public int NumBlocksOf(long seq) => _seqs.TryGetValue(seq, out var st) ? st.Blocks.Count : 0;
    public int NumTokensOf(long seq) => _seqs.TryGetValue(seq, out var st) ? st.NumTokens : 0;
    public bool Contains(long seq) => _seqs.ContainsKey(seq);
    public int RefCountOf(int blockId) => _pool[blockId].RefCount;

    public long ReservedSlots => (long)_pool.NumUsedBlocks * BlockSize;
    public long UsedSlots => _tokensHeld;

    public KvCacheStats Stats => new(
        _pool.TotalBlocks, _pool.NumFreeBlocks, _pool.NumUsedBlocks, 0, 0, 0, ReservedSlots, UsedSlots);

    /// <summary>Nothing is cached, so there is nothing to forget.</summary>
    public bool ResetPrefixCache() => true;

    public void CheckInvariants()
    {
        _pool.CheckInvariants();
        long tokens = 0;
        var holders = new int[_pool.TotalBlocks];
        foreach (var (seq, st) in _seqs)
        {
            if (st.Blocks.Count != BlocksPerSequence)
                throw new InvalidOperationException($"Sequence {seq} holds {st.Blocks.Count} blocks, not its reservation of {BlocksPerSequence}.");
            if (st.NumTokens > MaxModelLen) throw new InvalidOperationException($"Sequence {seq} is over max_model_len.");
            foreach (var b in st.Blocks) holders[b.BlockId]++;
            tokens += st.NumTokens;
        }
        for (int id = 0; id < holders.Length; id++)
            if (holders[id] != _pool[id].RefCount)
                throw new InvalidOperationException($"{_pool[id]} is held by {holders[id]} sequences.");
        if (tokens != _tokensHeld) throw new InvalidOperationException("Token counter out of sync.");
    }

    private SequenceBlocks Get(long seq) =>
        _seqs.TryGetValue(seq, out var st) ? st : throw new InvalidOperationException($"Sequence {seq} holds no blocks.");
}
