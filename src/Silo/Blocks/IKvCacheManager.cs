namespace Loom.Silo.Blocks;

/// <summary>
/// What the scheduler sees of KV memory: per-sequence block tables, admission (can this sequence get
/// slots?), the prefix cache, and release. Implemented by the paged <see cref="KvCacheManager"/> and by
/// <see cref="ContiguousKvCacheManager"/>, the reserve-max-length baseline the benchmark compares with.
/// </summary>
/// <remarks>
/// Sequences are keyed by a <c>long</c> sequence id, not a request id: the n&gt;1 samples of one
/// request are separate sequences with separate block tables. Not
/// thread-safe; the engine loop owns it.
/// <para>Slot contract: a sequence's token count here is the sum of every <see cref="AllocateSlots"/>
/// (computed prefix + new tokens) — the tokens that have, or are about to get, KV. Token i of the
/// sequence lives in block <c>BlockTable(seq)[i / BlockSize]</c>, slot <c>i % BlockSize</c>.</para>
/// </remarks>
public interface IKvCacheManager
{
    int BlockSize { get; }
    int TotalBlocks { get; }
    int NumFreeBlocks { get; }
    bool EnablePrefixCaching { get; }

    /// <summary>
    /// Longest cached prefix of whole blocks of <paramref name="tokens"/> for a sequence that holds no
    /// blocks yet. Never covers the last prompt token: it must be recomputed to produce logits. Pass the
    /// result unchanged to <see cref="AllocateSlots"/> before any other allocation, since an intervening
    /// allocation may evict the blocks.
    /// </summary>
    (IReadOnlyList<KvBlock> Blocks, int NumComputedTokens) GetComputedBlocks(long seq, ReadOnlySpan<int> tokens, ulong salt);

    /// <summary>
    /// Grows <paramref name="seq"/> so it can hold its current tokens + <paramref name="numNewComputedTokens"/>
    /// (its cache hits, first call only) + <paramref name="numNewTokens"/>. Returns false with no side
    /// effect when the pool cannot supply the blocks; the scheduler then preempts or waits.
    /// </summary>
    bool AllocateSlots(long seq, int numNewTokens, IReadOnlyList<KvBlock>? newComputedBlocks = null, int numNewComputedTokens = 0);

    /// <summary>
    /// After a step: hashes and registers every block of <paramref name="seq"/> that is now full within the
    /// first <paramref name="numTokensWithKv"/> tokens of <paramref name="allTokens"/> (prompt + output so
    /// far), so later sequences can hit it. Idempotent; blocks already registered are skipped.
    /// </summary>
    void CacheBlocks(long seq, ReadOnlySpan<int> allTokens, int numTokensWithKv, ulong salt);

    /// <summary>
    /// Releases every block of <paramref name="seq"/> (finish, abort, preemption). Throws
    /// <see cref="InvalidOperationException"/> for a sequence holding nothing — a double free.
    /// </summary>
    void Free(long seq);

    /// <summary>Block ids of <paramref name="seq"/> in token order. Valid until the next call that changes it.</summary>
    ReadOnlySpan<int> BlockTable(long seq);

    int NumBlocksOf(long seq);

    /// <summary>Tokens <paramref name="seq"/> holds slots for (see the slot contract).</summary>
    int NumTokensOf(long seq);

    /// <summary>Whether <paramref name="seq"/> currently holds an allocation.</summary>
    bool Contains(long seq);

    /// <summary>How many sequences hold block <paramref name="blockId"/> (0: free). A block may be written
    /// only while this is 1 — the check behind copy-on-write for forks.</summary>
    int RefCountOf(int blockId);

    /// <summary>Token slots in blocks held by sequences.</summary>
    long ReservedSlots { get; }

    /// <summary>Of <see cref="ReservedSlots"/>, those holding (or allocated for) a token; each physical slot counted once.</summary>
    long UsedSlots { get; }

    KvCacheStats Stats { get; }

    /// <summary>Forgets all cached prefixes; false (and nothing done) while any block is held.</summary>
    bool ResetPrefixCache();

    /// <summary>Throws <see cref="InvalidOperationException"/> if the bookkeeping is inconsistent. O(blocks).</summary>
    void CheckInvariants();
}
