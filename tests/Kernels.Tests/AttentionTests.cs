using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

public class AttentionTests
{
    [Theory]
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
        int kvHeads = 2, heads = kvHeads * group;
        // Mixed batch: a fresh prefill, prefill chunks on top of history (one spanning several work items), decodes, a 1-token prompt.
        int[] seqLens = [37, 50, 9, 1, 70, 90];
        int[] queryLens = [37, 13, 1, 1, 1, 40];
        int numSeqs = seqLens.Length;
        int maxBlocks = 90 / blockSize + 2;
        int numBlocks = numSeqs * maxBlocks + 3;
        var spec = new KvCacheSpec(NumLayers: 2, NumBlocks: numBlocks, BlockSize: blockSize, NumKvHeads: kvHeads, HeadDim: headDim, DType: kvType);

        using var backend = new CpuBackend(2);
        using var cache = backend.AllocateKvCache(spec);

        // Non-contiguous block tables: a shuffled pool of block ids handed out per sequence.
        var rng = new Random(42);
        var free = Enumerable.Range(0, numBlocks).OrderBy(_ => rng.Next()).ToArray();
        var tables = Enumerable.Repeat(-1, numSeqs * maxBlocks).ToArray();
        int next = 0;
        for (int s = 0; s < numSeqs; s++)
            for (int b = 0; b < (seqLens[s] + blockSize - 1) / blockSize; b++) tables[s * maxBlocks + b] = free[next++];

        int width = kvHeads * headDim;
        var kv = new List<(float[] K, float[] V)>();
        for (int s = 0; s < numSeqs; s++)
            kv.Add((TestData.Random(seqLens[s] * width, 100 + s), TestData.Random(seqLens[s] * width, 200 + s)));

        int Slot(int s, int p) => tables[s * maxBlocks + p / blockSize] * blockSize + p % blockSize;

        // History from earlier steps, then this step's new tokens (plus one padding token with slot -1).
        for (int s = 0; s < numSeqs; s++)
        {
            int hist = seqLens[s] - queryLens[s];
            if (hist == 0) continue;
            WriteRange(backend, cache, kv[s], width, 0, hist, p => Slot(s, p), layer: 1);
        }

        var queryStart = new int[numSeqs + 1];
        for (int s = 0; s < numSeqs; s++) queryStart[s + 1] = queryStart[s] + queryLens[s];
        int tokens = queryStart[^1];
        var newK = new float[(tokens + 1) * width];
        var newV = new float[(tokens + 1) * width];
        var slots = new int[tokens + 1];
        for (int s = 0; s < numSeqs; s++)
        {
            for (int i = 0; i < queryLens[s]; i++)
            {
                int t = queryStart[s] + i, p = seqLens[s] - queryLens[s] + i;
                Array.Copy(kv[s].K, p * width, newK, t * width, width);
                Array.Copy(kv[s].V, p * width, newV, t * width, width);
                slots[t] = Slot(s, p);
            }
        }

        slots[tokens] = -1;
        Array.Fill(newK, 1e9f, tokens * width, width);
        using (var kt = TestData.Upload(backend, newK, tokens + 1, width))
        using (var vt = TestData.Upload(backend, newV, tokens + 1, width))
            backend.WriteKv(cache, 1, kt, vt, slots);

        var q = TestData.Random(tokens * heads * headDim, 7);
        float scale = 1f / MathF.Sqrt(headDim);
        var meta = new AttentionMetadata
        {
            NumSeqs = numSeqs,
            QueryStart = queryStart.Concat(new[] { -5, -5 }).ToArray(),
            SeqLens = seqLens.Concat(new[] { 99 }).ToArray(),
            BlockTables = tables,
            MaxBlocksPerSeq = maxBlocks,
        };
        using var qt = TestData.Upload(backend, q, tokens, heads * headDim);
        using var o = backend.Allocate(DType.F32, tokens, heads * headDim);
        backend.PagedAttention(qt, cache, 1, meta, heads, scale, o);

        // The cache stores what it was given rounded to its dtype; the reference sees the same values.
        var stored = kv.Select(e => (e.K.Select(v => NativeWeights.Round(v, kvType)).ToArray(), e.V.Select(v => NativeWeights.Round(v, kvType)).ToArray())).ToList();
        var expected = Reference.Attention(q, queryStart, seqLens, stored, heads, kvHeads, headDim, scale);
        TestData.AssertClose(expected, TestData.Download(backend, o), 2e-6, 2e-5);
    }

    private static void WriteRange(CpuBackend backend, KvCache cache, (float[] K, float[] V) kv, int width, int from, int count, Func<int, int> slot, int layer)
    {
        using var kt = TestData.Upload(backend, kv.K[(from * width)..((from + count) * width)], count, width);
        using var vt = TestData.Upload(backend, kv.V[(from * width)..((from + count) * width)], count, width);
        backend.WriteKv(cache, layer, kt, vt, Enumerable.Range(from, count).Select(slot).ToArray());
    }

    [Fact]
    public void WriteKvUsesTransposedKAndRowMajorVTiles()
    {
        using var backend = new CpuBackend(1);
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

    [Fact]
    public void RejectsBadMetadata()
    {
        using var backend = new CpuBackend(1);
        using var cache = backend.AllocateKvCache(new KvCacheSpec(1, 2, 4, 1, 8, DType.F32));
        using var q = backend.Allocate(DType.F32, 1, 8);
        using var o = backend.Allocate(DType.F32, 1, 8);
        var meta = new AttentionMetadata { NumSeqs = 1, QueryStart = [0, 1], SeqLens = [3], BlockTables = [7], MaxBlocksPerSeq = 1 };
        Assert.Throws<ArgumentException>(() => backend.PagedAttention(q, cache, 0, meta, 1, 1f, o));
    }
}
