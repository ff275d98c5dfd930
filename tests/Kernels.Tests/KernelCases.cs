using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

/// <summary>
/// Kernel parity cases against the scalar double-precision <see cref="Reference"/>, shared by the
/// xunit suites (once per ISA) and by tests/CpuCheck, the ARM64 check that runs under qemu.
/// </summary>
internal static class KernelCases
{
    /// <summary>y = x·Wᵀ (+ b) against the double-precision reference.</summary>
    public static void Linear(CpuBackend backend, DType dtype, int m, int k, int n, bool withBias)
    {
                using var weights = new NativeWeights();
        var wv = weights.Make("w", dtype, [n, k], TestData.Random(n * k, 1 + n + k), out var wRounded);
        var x = TestData.Random(m * k, 7 + m);
        var b = withBias ? TestData.Random(n, 3) : null;

        using var lw = backend.PrepareLinear([wv]);
        Assert.Equal(n, lw.OutFeatures);
        Assert.Equal(k, lw.InFeatures);
        Assert.Equal(dtype, lw.DType);
        Assert.True(lw.ByteLength >= (long)n * k * 2);

        using var xt = TestData.Upload(backend, x, m, k);
        using var bt = b is null ? null : TestData.Upload(backend, b, n);
        using var yt = backend.Allocate(DType.F32, m, n);
        backend.Linear(xt, lw, bt, yt);

        var (expected, scale) = Reference.Linear(x, m, k, wRounded, n, b);
        TestData.AssertClose(expected, TestData.Download(backend, yt), 1e-6, 1e-5, scale, $"{dtype} M={m} K={k} N={n}");
    }

    /// <summary>A mixed batch (fresh prefill, chunks over history, decodes) of paged GQA attention against the reference.</summary>
    public static void Attention(CpuBackend backend, int group, int headDim, int blockSize, DType kvType)
    {
        int kvHeads = 2, heads = kvHeads * group;
        // Mixed batch: a fresh prefill, prefill chunks on top of history (one spanning several work items), decodes, a 1-token prompt.
        int[] seqLens = [37, 50, 9, 1, 70, 90];
        int[] queryLens = [37, 13, 1, 1, 1, 40];
        int numSeqs = seqLens.Length;
        int maxBlocks = 90 / blockSize + 2;
        int numBlocks = numSeqs * maxBlocks + 3;
        var spec = new KvCacheSpec(NumLayers: 2, NumBlocks: numBlocks, BlockSize: blockSize, NumKvHeads: kvHeads, HeadDim: headDim, DType: kvType);

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

    public static void Embedding(CpuBackend backend, DType dtype)
    {
        using var weights = new NativeWeights();
        int vocab = 11, h = 37;
        var view = weights.Make("embed", dtype, [vocab, h], TestData.Random(vocab * h, 4), out var rounded);
        using var table = backend.Upload(view, dtype);
        int[] ids = [3, 0, 10, 3, 7];
        using var o = backend.Allocate(DType.F32, ids.Length, h);
        backend.Embedding(table, ids, o);
        var expected = ids.SelectMany(id => rounded.Skip(id * h).Take(h)).ToArray();
        Assert.Equal(expected, TestData.Download(backend, o));
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.Embedding(table, [vocab], o.SliceRows(0, 1)));
    }

    public static void RmsNorm(CpuBackend backend, int rows, int cols)
    {
        var x = TestData.Random(rows * cols, rows, 3f);
        var w = TestData.Random(cols, cols);
        using var xt = TestData.Upload(backend, x, rows, cols);
        using var wt = TestData.Upload(backend, w, cols);
        using var o = backend.Allocate(DType.F32, rows, cols);
        backend.RmsNorm(xt, wt, 1e-5f, o);
        var expected = Reference.RmsNorm(x, rows, cols, w, 1e-5f);
        TestData.AssertClose(expected, TestData.Download(backend, o), 1e-6, 1e-5);

        // In place: the output aliases x.
        backend.RmsNorm(xt, wt, 1e-5f, xt);
        TestData.AssertClose(expected, TestData.Download(backend, xt), 1e-6, 1e-5);
    }

    public static void AddRmsNorm(CpuBackend backend, int rows, int cols)
    {
        var x = TestData.Random(rows * cols, 1);
        var res = TestData.Random(rows * cols, 2);
        var w = TestData.Random(cols, 3);
        var sum = x.Zip(res, (a, b) => a + b).ToArray();
        var expected = Reference.RmsNorm(sum, rows, cols, w, 1e-6f);

        using var xt = TestData.Upload(backend, x, rows, cols);
        using var rt = TestData.Upload(backend, res, rows, cols);
        using var wt = TestData.Upload(backend, w, cols);
        backend.AddRmsNorm(xt, rt, wt, 1e-6f, xt);
        Assert.Equal(sum, TestData.Download(backend, rt));
        TestData.AssertClose(expected, TestData.Download(backend, xt), 1e-6, 1e-5);
    }

    public static void Rope(CpuBackend backend, int rows, int headDim, int half, int firstPos)
    {
        int heads = 3, cols = heads * headDim;
        var x = TestData.Random(rows * cols, rows + headDim);
        var invFreq = Enumerable.Range(0, half).Select(i => (float)Math.Pow(10000, -2.0 * i / (2 * half))).ToArray();
        var positions = Enumerable.Range(0, rows).Select(i => firstPos + 3 * i).ToArray();
        using var xt = TestData.Upload(backend, x, rows, cols);
        backend.Rope(xt, headDim, positions, invFreq, 1.25f);
        var expected = (float[])x.Clone();
        Reference.Rope(expected, rows, cols, headDim, positions, invFreq, 1.25f);
        TestData.AssertClose(expected, TestData.Download(backend, xt), 1e-6, 1e-5);

        // Partial rotary: dims past 2*half stay untouched.
        var got = TestData.Download(backend, xt);
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                for (int i = 2 * half; i < headDim; i++) Assert.Equal(x[r * cols + h * headDim + i], got[r * cols + h * headDim + i]);
    }

    public static void SiluAndMul(CpuBackend backend, int rows, int f)
    {
        var gu = TestData.Random(rows * 2 * f, f, 8f);
        using var gt = TestData.Upload(backend, gu, rows, 2 * f);
        using var o = backend.Allocate(DType.F32, rows, f);
        backend.SiluAndMul(gt, o);
        TestData.AssertClose(Reference.SiluAndMul(gu, rows, f), TestData.Download(backend, o), 1e-6, 1e-5);
    }
}
