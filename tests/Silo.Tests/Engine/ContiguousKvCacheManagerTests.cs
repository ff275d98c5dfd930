using Loom.Benchmarks.Baselines;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

public class ContiguousKvCacheManagerTests
{
    private const int Bs = 16;

    [Fact]
    public void FirstAllocationReservesMaxModelLen()
    {
        var m = new ContiguousKvCacheManager(20, Bs, maxModelLen: 100); // 7 blocks per sequence
        Assert.Equal(7, m.BlocksPerSequence);
        Assert.True(m.AllocateSlots(1, 10));
        Assert.Equal(7, m.NumBlocksOf(1));
        Assert.Equal(13, m.NumFreeBlocks);
        Assert.True(m.AllocateSlots(1, 80)); // growth inside the reservation takes nothing
        Assert.Equal(13, m.NumFreeBlocks);
        Assert.Equal(90, m.NumTokensOf(1));
        m.CheckInvariants();
    }

    [Fact]
    public void AdmissionFailsOnceReservationsExhaustThePool()
    {
        var m = new ContiguousKvCacheManager(20, Bs, maxModelLen: 100);
        Assert.True(m.AllocateSlots(1, 1));
        Assert.True(m.AllocateSlots(2, 1));
        var stats = m.Stats;
        // 6 blocks left, a reservation needs 7 — though the two sequences use only 2 token slots.
        Assert.False(m.AllocateSlots(3, 1));
        Assert.False(m.Contains(3));
        Assert.Equal(stats, m.Stats);
        m.CheckInvariants();

        // The paged manager admits the same third sequence easily.
        var paged = new KvCacheManager(20, Bs);
        for (long s = 1; s <= 3; s++) Assert.True(paged.AllocateSlots(s, 1));
        Assert.Equal(3, paged.Stats.UsedBlocks);
    }

    [Fact]
    public void WasteIsTheUnusedPartOfEveryReservation()
    {
        var m = new ContiguousKvCacheManager(20, Bs, maxModelLen: 128); // 8 blocks = 128 slots each
        Assert.True(m.AllocateSlots(1, 32));
        Assert.True(m.AllocateSlots(2, 96));
        var s = m.Stats;
        Assert.Equal(256, s.ReservedSlots);
        Assert.Equal(128, s.UsedSlots);
        Assert.Equal(0.5, s.KvWaste, 9);
        Assert.Equal(16.0 / 20, s.Usage, 9);

        // Paged holds the same tokens in exactly 2 + 6 blocks, no waste.
        var paged = new KvCacheManager(20, Bs);
        Assert.True(paged.AllocateSlots(1, 32));
        Assert.True(paged.AllocateSlots(2, 96));
        Assert.Equal(0.0, paged.Stats.KvWaste, 9);
        Assert.Equal(8, paged.Stats.UsedBlocks);
    }

    [Fact]
    public void GrowingPastMaxModelLenThrows()
    {
        var m = new ContiguousKvCacheManager(20, Bs, maxModelLen: 100);
        Assert.True(m.AllocateSlots(1, 100));
        Assert.Throws<InvalidOperationException>(() => m.AllocateSlots(1, 1));
        Assert.Equal(100, m.NumTokensOf(1));
        m.CheckInvariants();
    }

    [Fact]
    public void NoPrefixCache()
    {
        var m = new ContiguousKvCacheManager(20, Bs, maxModelLen: 64);
        var prompt = Enumerable.Range(1, 40).ToArray();
        Assert.True(m.AllocateSlots(1, prompt.Length));
        m.CacheBlocks(1, prompt, prompt.Length, 0);
        m.Free(1);
        var (blocks, computed) = m.GetComputedBlocks(2, prompt, 0);
        Assert.Empty(blocks);
        Assert.Equal(0, computed);
        Assert.False(m.EnablePrefixCaching);
        Assert.Equal(0, m.Stats.CachedFreeBlocks);
    }

}
