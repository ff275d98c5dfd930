using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

public class BlockHashTests
{
    private static readonly int[] A = [1, 2, 3, 4];
    private static readonly int[] B = [1, 2, 3, 5];

    [Fact]
    public void SameInputsSameHash()
    {
        Assert.Equal(BlockHash.Compute(null, A, 0), BlockHash.Compute(null, A, 0));
        var p = BlockHash.Compute(null, B, 0);
        Assert.Equal(BlockHash.Compute(p, A, 7), BlockHash.Compute(p, A, 7));
    }

    [Fact]
    public void TokensParentAndSaltAllChangeTheHash()
    {
        var root = BlockHash.Compute(null, A, 0);
        Assert.NotEqual(root, BlockHash.Compute(null, B, 0));
        Assert.NotEqual(root, BlockHash.Compute(null, A, 1));
        Assert.NotEqual(root, BlockHash.Compute(BlockHash.Compute(null, B, 0), A, 0));
        // Token order matters, not just the multiset.
        Assert.NotEqual(root, BlockHash.Compute(null, [4, 3, 2, 1], 0));
    }

    [Fact]
    public void LargeBlocksUseThePooledBufferAndStillAgree()
    {
        var big = Enumerable.Range(0, 1024).ToArray();
        var h1 = BlockHash.Compute(null, big, 3);
        var h2 = BlockHash.Compute(null, big.ToArray(), 3);
        Assert.Equal(h1, h2);
        big[1023] = -1;
        Assert.NotEqual(h1, BlockHash.Compute(null, big, 3));
    }
}
