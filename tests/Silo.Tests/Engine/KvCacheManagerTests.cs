using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

public class KvCacheManagerTests
{
    private const int Bs = 16;

    private static int[] Tokens(int count, int start) => Enumerable.Range(start, count).ToArray();

    private static int[] Concat(int[] a, int[] b) => [.. a, .. b];

    /// <summary>Admits <paramref name="seq"/> as a scheduler would: prefix lookup, allocate, compute, cache.</summary>
    private static int Admit(KvCacheManager m, long seq, int[] prompt, ulong salt = 0)
    {
        var (blocks, computed) = m.GetComputedBlocks(seq, prompt, salt);
        Assert.True(m.AllocateSlots(seq, prompt.Length - computed, blocks, computed));
        m.CacheBlocks(seq, prompt, prompt.Length, salt);
        m.CheckInvariants();
        return computed;
    }

    [Fact]
    public void AllocateAndFreeReturnToBaseline()
    {
        var m = new KvCacheManager(10, Bs);
        var before = m.Stats;
        Assert.True(m.AllocateSlots(1, 40));
        Assert.Equal(3, m.NumBlocksOf(1));
        Assert.Equal(3, m.BlockTable(1).Length);
        Assert.True(m.AllocateSlots(1, 8)); // 48 tokens still fit in 3 blocks
        Assert.Equal(3, m.NumBlocksOf(1));
        Assert.True(m.AllocateSlots(1, 1));
        Assert.Equal(4, m.NumBlocksOf(1));
        Assert.Equal(49, m.NumTokensOf(1));
        Assert.Equal(4, m.Stats.UsedBlocks);
        m.CheckInvariants();

        m.Free(1);
        m.CheckInvariants();
        var after = m.Stats;
        Assert.Equal(before.FreeBlocks, after.FreeBlocks);
        Assert.Equal(0, after.UsedBlocks);
        Assert.False(m.Contains(1));
        Assert.Throws<InvalidOperationException>(() => m.Free(1));
    }

    [Fact]
    public void AllocateSlotsFailsWithoutSideEffectsWhenFull()
    {
        var m = new KvCacheManager(4, Bs);
        Assert.True(m.AllocateSlots(1, 3 * Bs));
        var table = m.BlockTable(1).ToArray();
        var stats = m.Stats;

        Assert.False(m.AllocateSlots(2, 2 * Bs));          // new sequence: not created
        Assert.False(m.Contains(2));
        Assert.False(m.AllocateSlots(1, Bs + 1));           // existing: not grown
        Assert.Equal(table, m.BlockTable(1).ToArray());
        Assert.Equal(3 * Bs, m.NumTokensOf(1));
        Assert.Equal(stats, m.Stats);
        m.CheckInvariants();

        Assert.True(m.AllocateSlots(1, Bs)); // exactly the last block
        Assert.Equal(0, m.NumFreeBlocks);
    }

    [Fact]
    public void ARetriedLookupCountsOnceInPrefixMetrics()
    {
        var m = new KvCacheManager(6, Bs);
        var prefix = Tokens(3 * Bs, 1000);
        Admit(m, 1, Concat(prefix, Tokens(5, 1))); // 4 blocks held, 2 free
        var s0 = m.Stats;
        var second = Concat(prefix, Tokens(3 * Bs, 500)); // needs 3 new blocks: does not fit yet
        for (int attempt = 0; attempt < 5; attempt++)
        {
            var (blocks, computed) = m.GetComputedBlocks(2, second, 0);
            Assert.False(m.AllocateSlots(2, second.Length - computed, blocks, computed));
        }

        Assert.Equal(s0, m.Stats);
        m.Free(1); // the prefix blocks stay cached
        var (hit, n) = m.GetComputedBlocks(2, second, 0);
        Assert.True(m.AllocateSlots(2, second.Length - n, hit, n));
        Assert.Equal(s0.PrefixQueries + second.Length, m.Stats.PrefixQueries);
        Assert.Equal(s0.PrefixHits + 3 * Bs, m.Stats.PrefixHits);
        m.CheckInvariants();
    }

    [Fact]
    public void SharedThreeBlockPrefixIsHit()
    {
        var m = new KvCacheManager(20, Bs);
        var prefix = Tokens(3 * Bs, 1000);
        Assert.Equal(0, Admit(m, 1, Concat(prefix, Tokens(5, 1))));
        var s0 = m.Stats;

        var second = Concat(prefix, Tokens(7, 500));
        var (blocks, computed) = m.GetComputedBlocks(2, second, 0);
        Assert.Equal(48, computed);
        Assert.Equal(m.BlockTable(1)[..3].ToArray(), blocks.Select(b => b.BlockId).ToArray());
        Assert.Equal(s0, m.Stats); // a lookup counts once its allocation succeeds

        Assert.True(m.AllocateSlots(2, second.Length - computed, blocks, computed));
        Assert.Equal(s0.PrefixHits + 48, m.Stats.PrefixHits);
        Assert.Equal(s0.PrefixQueries + second.Length, m.Stats.PrefixQueries);
        Assert.All(blocks, b => Assert.Equal(2, b.RefCount));
        Assert.Equal(m.BlockTable(1)[..3].ToArray(), m.BlockTable(2)[..3].ToArray());
        Assert.NotEqual(m.BlockTable(1)[3], m.BlockTable(2)[3]);
        m.CheckInvariants();

        m.Free(1);
        m.Free(2);
        m.CheckInvariants();
        Assert.Equal(0, m.Stats.UsedBlocks);
        Assert.Equal(3, m.Stats.CachedFreeBlocks);
    }

    [Fact]
    public void FreedPrefixIsStillHitAndLeavesTheFreeQueue()
    {
        var m = new KvCacheManager(10, Bs);
        var prompt = Tokens(2 * Bs + 3, 7);
        Admit(m, 1, prompt);
        m.Free(1);
        Assert.Equal(10, m.NumFreeBlocks);
        Assert.Equal(2, m.Stats.CachedFreeBlocks);

        Assert.Equal(2 * Bs, Admit(m, 2, prompt));
        Assert.Equal(0, m.Stats.CachedFreeBlocks);
        Assert.Equal(3, m.Stats.UsedBlocks);
    }

    [Fact]
    public void WholePromptCachedStillRecomputesTheLastToken()
    {
        var m = new KvCacheManager(10, Bs);
        var prompt = Tokens(3 * Bs, 1);
        Admit(m, 1, prompt);
        Assert.Equal(3, m.Pool.NumCachedBlocks);

        var (blocks, computed) = m.GetComputedBlocks(2, prompt, 0);
        Assert.Equal(2 * Bs, computed); // not 48: the last block holds the last token
        Assert.Equal(2, blocks.Count);
        Assert.True(m.AllocateSlots(2, prompt.Length - computed, blocks, computed));
        Assert.Equal(3, m.NumBlocksOf(2));
        m.CheckInvariants();

        // One token past the cached blocks: all three full blocks can be reused.
        var longer = Concat(prompt, [99]);
        Assert.Equal(3 * Bs, m.GetComputedBlocks(3, longer, 0).NumComputedTokens);
    }

    [Fact]
    public void DifferentSaltNeverHits()
    {
        var m = new KvCacheManager(10, Bs);
        var prompt = Tokens(3 * Bs + 1, 1);
        Admit(m, 1, prompt, salt: 1);
        Assert.Equal(0, m.GetComputedBlocks(2, prompt, 2).NumComputedTokens);
        Assert.Equal(3 * Bs, m.GetComputedBlocks(3, prompt, 1).NumComputedTokens);
    }

    [Fact]
    public void DifferentEarlierBlockBreaksTheChain()
    {
        var m = new KvCacheManager(10, Bs);
        var a = Tokens(3 * Bs + 1, 1);
        Admit(m, 1, a);
        var b = (int[])a.Clone();
        b[Bs + 2] = -5; // second block differs; third block is identical but its prefix is not
        Assert.Equal(Bs, m.GetComputedBlocks(2, b, 0).NumComputedTokens);
    }

    [Fact]
    public void EvictionIsLruAndTailBlocksFirst()
    {
        var m = new KvCacheManager(6, Bs);
        var a = Tokens(3 * Bs, 100);
        var b = Tokens(2 * Bs, 900);
        Admit(m, 1, a);
        m.Free(1);
        Admit(m, 2, b);
        m.Free(2);
        // Free queue: 1 never-used block, then A's blocks tail-first, then B's.
        Assert.Equal(5, m.Stats.CachedFreeBlocks);
        var probeA = Concat(a, [1]);
        var probeB = Concat(b, [1]);
        Assert.Equal(3 * Bs, m.GetComputedBlocks(10, probeA, 0).NumComputedTokens);

        Assert.True(m.AllocateSlots(3, Bs)); // takes the unused block
        Assert.Equal(3 * Bs, m.GetComputedBlocks(10, probeA, 0).NumComputedTokens);
        Assert.True(m.AllocateSlots(4, Bs)); // evicts A's LAST block (oldest freed, tail first)
        Assert.Equal(2 * Bs, m.GetComputedBlocks(10, probeA, 0).NumComputedTokens);
        Assert.True(m.AllocateSlots(5, Bs)); // then A's middle block
        Assert.Equal(Bs, m.GetComputedBlocks(10, probeA, 0).NumComputedTokens);
        Assert.Equal(2 * Bs, m.GetComputedBlocks(10, probeB, 0).NumComputedTokens); // B, freed later, untouched
        Assert.True(m.AllocateSlots(6, Bs)); // A's head
        Assert.Equal(0, m.GetComputedBlocks(10, probeA, 0).NumComputedTokens);
        Assert.Equal(2 * Bs, m.GetComputedBlocks(10, probeB, 0).NumComputedTokens);
        Assert.True(m.AllocateSlots(7, Bs)); // B's tail block
        Assert.Equal(Bs, m.GetComputedBlocks(10, probeB, 0).NumComputedTokens);
        m.CheckInvariants();
    }

    [Fact]
    public void AHitOnAFreeCachedBlockCountsAgainstCapacity()
    {
        var m = new KvCacheManager(3, Bs);
        var prompt = Tokens(2 * Bs + 1, 1);
        Admit(m, 1, prompt);
        m.Free(1);
        var (blocks, computed) = m.GetComputedBlocks(2, prompt, 0);
        Assert.Equal(2, blocks.Count);
        // Two free cached hits + one new block = all three free blocks: fits exactly ...
        Assert.True(m.AllocateSlots(2, prompt.Length - computed, blocks, computed));
        m.Free(2);
        (blocks, computed) = m.GetComputedBlocks(3, prompt, 0);
        // ... but two more new blocks would need four.
        Assert.False(m.AllocateSlots(3, prompt.Length - computed + Bs, blocks, computed));
        Assert.All(blocks, b => Assert.Equal(0, b.RefCount));
        Assert.Equal(3, m.NumFreeBlocks);
        m.CheckInvariants();
    }

    [Fact]
    public void CacheBlocksRegistersGeneratedTokensToo()
    {
        var m = new KvCacheManager(10, Bs);
        var all = Tokens(Bs + 10, 1).ToList();
        Admit(m, 1, all.ToArray());
        Assert.Equal(1, m.Pool.NumCachedBlocks);
        for (int i = 0; i < 6; i++)
        {
            Assert.True(m.AllocateSlots(1, 1));
            all.Add(5000 + i);
            m.CacheBlocks(1, all.ToArray(), all.Count, 0);
            m.CheckInvariants();
        }
        Assert.Equal(2, m.Pool.NumCachedBlocks);
        Assert.Equal(2 * Bs, m.GetComputedBlocks(2, all.Append(1).ToArray(), 0).NumComputedTokens);
    }

    [Fact]
    public void CachingOffNeverHitsOrCounts()
    {
        var m = new KvCacheManager(10, Bs, enablePrefixCaching: false);
        var prompt = Tokens(3 * Bs + 1, 1);
        Admit(m, 1, prompt);
        m.Free(1);
        Assert.Equal(0, m.GetComputedBlocks(2, prompt, 0).NumComputedTokens);
        Assert.Equal(0, m.Stats.PrefixQueries);
        Assert.Equal(0, m.Stats.CachedFreeBlocks);
    }

    [Fact]
    public void ResetPrefixCacheForgetsFreedPrefixes()
    {
        var m = new KvCacheManager(10, Bs);
        var prompt = Tokens(2 * Bs + 1, 1);
        Admit(m, 1, prompt);
        Assert.False(m.ResetPrefixCache());
        m.Free(1);
        Assert.True(m.ResetPrefixCache());
        Assert.Equal(0, m.GetComputedBlocks(2, prompt, 0).NumComputedTokens);
        m.CheckInvariants();
    }

    [Fact]
    public void UsageAndWasteFollowAllocation()
    {
        var m = new KvCacheManager(8, Bs);
        Assert.True(m.AllocateSlots(1, 17)); // 2 blocks, 15 slots unfilled
        var s = m.Stats;
        Assert.Equal(0.25, s.Usage);
        Assert.Equal(2 * Bs, s.ReservedSlots);
        Assert.Equal(17, s.UsedSlots);
        Assert.Equal(1 - 17.0 / 32, s.KvWaste, 9);
    }

    [Fact]
    public void MisuseThrows()
    {
        var m = new KvCacheManager(10, Bs);
        var prompt = Tokens(2 * Bs + 1, 1);
        Admit(m, 1, prompt);
        Assert.Throws<InvalidOperationException>(() => m.GetComputedBlocks(1, prompt, 0));
        var (blocks, computed) = m.GetComputedBlocks(2, prompt, 0);
        Assert.Throws<ArgumentException>(() => m.AllocateSlots(2, 1, blocks, computed + 1));
        Assert.Throws<InvalidOperationException>(() => m.AllocateSlots(1, 1, blocks, computed));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.CacheBlocks(1, prompt, prompt.Length + 1, 0));
        Assert.Throws<InvalidOperationException>(() => m.BlockTable(42));
        m.CheckInvariants();
    }
}
