using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

public class AttentionTests : IsaTestBase
{
    [SkippableTheory]
    [InlineData(1, 64, 16, DType.F32)]
    [InlineData(3, 64, 16, DType.F32)]
    [InlineData(1, 48, 5, DType.F32)]
    [InlineData(3, 48, 7, DType.F32)]
    [InlineData(2, 8, 4, DType.F32)]
    [InlineData(3, 100, 3, DType.F32)]
    [InlineData(3, 64, 16, DType.BF16)]
    [InlineData(1, 57, 5, DType.BF16)]
    [InlineData(4, 64, 16, DType.F32)]
    [InlineData(7, 64, 32, DType.BF16)]
    [InlineData(5, 128, 16, DType.F32)]
    [InlineData(2, 16, 24, DType.F32)]
    public void PagedAttentionMatchesReference(int group, int headDim, int blockSize, DType kvType)
    {
        using var backend = Backend(2);
        KernelCases.Attention(backend, group, headDim, blockSize, kvType);
    }


    [SkippableFact]
    public void WriteKvUsesTransposedKAndRowMajorVTiles()
    {
        using var backend = Backend(1);
        var spec = new KvCacheSpec(1, 3, 4, 2, 5, DType.F32);
        using var cache = (CpuKvCache)backend.AllocateKvCache(spec);
        var k = Enumerable.Range(0, 10).Select(i => (float)i).ToArray();
        using var kt = TestData.Upload(backend, k, 1, 10);
        using var vt = TestData.Upload(backend, k.Select(v => -v).ToArray(), 1, 10);
        backend.WriteKv(cache, 0, kt, vt, [2 * 4 + 3]);
        unsafe
        {
            float* kd = (float*)cache.K(0);
            float* vd = (float*)cache.V(0);
            for (int h = 0; h < 2; h++)
                for (int x = 0; x < 5; x++)
                {
                    long tile = (2L * 2 + h) * 4 * 5;
                    Assert.Equal(h * 5 + x, kd[tile + x * 4 + 3]); // K transposed: [headDim][offset]
                    Assert.Equal(-(h * 5 + x), vd[tile + 3 * 5 + x]); // V: [offset][headDim]
                }
        }
    }

    [SkippableFact]
    public void RejectsBadMetadata()
    {
        using var backend = Backend(1);
        using var cache = backend.AllocateKvCache(new KvCacheSpec(1, 2, 4, 1, 8, DType.F32));
        using var q = backend.Allocate(DType.F32, 1, 8);
        using var o = backend.Allocate(DType.F32, 1, 8);
        var meta = new AttentionMetadata { NumSeqs = 1, QueryStart = [0, 1], SeqLens = [3], BlockTables = [7], MaxBlocksPerSeq = 1 };
        Assert.Throws<ArgumentException>(() => backend.PagedAttention(q, cache, 0, meta, 1, 1f, o));
    }
}
