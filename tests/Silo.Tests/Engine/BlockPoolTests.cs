using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

public class BlockPoolTests
{
    private static int[] Ids(IEnumerable<KvBlock> blocks) => blocks.Select(b => b.BlockId).ToArray();

    [Fact]
    public void AllocatesInIdOrderAndFreesToTheTail()
    {
        var pool = new BlockPool(4);
        var got = new List<KvBlock>();
        Assert.True(pool.TryAllocate(3, got));
        Assert.Equal([0, 1, 2], Ids(got));
        Assert.All(got, b => Assert.Equal(1, b.RefCount));
        Assert.Equal(1, pool.NumFreeBlocks);
        pool.Free(got[1]);
        Assert.Equal([3, 1], Ids(pool.FreeBlocksInEvictionOrder()));
        pool.CheckInvariants();
    }

    [Fact]
    public void TryAllocateTooManyChangesNothing()
    {
        var pool = new BlockPool(2);
        var got = new List<KvBlock>();
        Assert.False(pool.TryAllocate(3, got));
        Assert.Empty(got);
        Assert.Equal(2, pool.NumFreeBlocks);
        pool.CheckInvariants();
    }

    [Fact]
    public void TouchRemovesAFreeCachedBlockFromTheMiddleOfTheQueue()
    {
        var pool = new BlockPool(4);
        var got = new List<KvBlock>();
        pool.TryAllocate(4, got);
        var h = BlockHash.Compute(null, [1, 2], 0);
        Assert.True(pool.TryCacheBlock(got[2], h));
        foreach (var b in got) pool.Free(b);
        Assert.Equal(1, pool.NumCachedFreeBlocks);

        var hit = pool.GetCachedBlock(h);
        Assert.Same(got[2], hit);
        pool.Touch(hit!);
        Assert.Equal(1, hit!.RefCount);
        Assert.Equal([0, 1, 3], Ids(pool.FreeBlocksInEvictionOrder()));
        Assert.Equal(0, pool.NumCachedFreeBlocks);
        Assert.Equal(1, pool.NumCachedBlocks);
        pool.CheckInvariants();
    }

    [Fact]
    public void ReallocatingACachedBlockEvictsItsHash()
    {
        var pool = new BlockPool(1);
        var got = new List<KvBlock>();
        pool.TryAllocate(1, got);
        var h = BlockHash.Compute(null, [9], 0);
        pool.TryCacheBlock(got[0], h);
        pool.Free(got[0]);
        Assert.NotNull(pool.GetCachedBlock(h));

        got.Clear();
        pool.TryAllocate(1, got);
        Assert.Null(got[0].Hash);
        Assert.Null(pool.GetCachedBlock(h));
        Assert.Equal(0, pool.NumCachedBlocks);
        pool.CheckInvariants();
    }

    [Fact]
    public void DuplicateHashLeavesTheSecondBlockUncached()
    {
        var pool = new BlockPool(2);
        var got = new List<KvBlock>();
        pool.TryAllocate(2, got);
        var h = BlockHash.Compute(null, [5], 0);
        Assert.True(pool.TryCacheBlock(got[0], h));
        Assert.False(pool.TryCacheBlock(got[1], h));
        Assert.Null(got[1].Hash);
        Assert.Same(got[0], pool.GetCachedBlock(h));
        pool.CheckInvariants();
    }

    [Fact]
    public void DoubleFreeThrows()
    {
        var pool = new BlockPool(2);
        var got = new List<KvBlock>();
        pool.TryAllocate(1, got);
        pool.Free(got[0]);
        Assert.Throws<InvalidOperationException>(() => pool.Free(got[0]));
        pool.CheckInvariants();
    }

    [Fact]
    public void CachingOffNeverCaches()
    {
        var pool = new BlockPool(2, enableCaching: false);
        var got = new List<KvBlock>();
        pool.TryAllocate(1, got);
        Assert.False(pool.TryCacheBlock(got[0], BlockHash.Compute(null, [1], 0)));
        Assert.Equal(0, pool.NumCachedBlocks);
    }

    [Fact]
    public void ResetPrefixCacheRefusesWhileBlocksAreHeld()
    {
        var pool = new BlockPool(2);
        var got = new List<KvBlock>();
        pool.TryAllocate(1, got);
        var h = BlockHash.Compute(null, [1], 0);
        pool.TryCacheBlock(got[0], h);
        Assert.False(pool.ResetPrefixCache());
        pool.Free(got[0]);
        Assert.True(pool.ResetPrefixCache());
        Assert.Null(pool.GetCachedBlock(h));
        Assert.Equal(0, pool.NumCachedFreeBlocks);
        pool.CheckInvariants();
    }
}
