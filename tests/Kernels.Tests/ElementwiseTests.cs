using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

public class ElementwiseTests
{
    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void EmbeddingGathersRowsAsF32(DType dtype)
    {
        using var backend = new CpuBackend(2);
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

    [Theory]
    [InlineData(DType.F32, DType.F32)]
    [InlineData(DType.BF16, DType.F32)]
    [InlineData(DType.F16, DType.F32)]
    [InlineData(DType.BF16, DType.BF16)]
    [InlineData(DType.F16, DType.F16)]
    [InlineData(DType.F32, DType.BF16)]
    public void UploadConverts(DType from, DType to)
    {
        using var backend = new CpuBackend(1);
        using var weights = new NativeWeights();
        var view = weights.Make("w", from, [3, 41], TestData.Random(123, 8), out var rounded);
        using var t = backend.Upload(view, to);
        Assert.Equal(to, t.DType);
        Assert.Equal(new[] { 3, 41 }, t.Shape);
        using var f = backend.Allocate(DType.F32, 3, 41);
        backend.Embedding(t, [0, 1, 2], f);
        var expected = rounded.Select(v => NativeWeights.Round(v, to)).ToArray();
        Assert.Equal(expected, TestData.Download(backend, f));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(17, 577)]
    [InlineData(70, 576)]
    public void RmsNormMatchesReference(int rows, int cols)
    {
        using var backend = new CpuBackend(2);
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

    [Theory]
    [InlineData(1, 9)]
    [InlineData(17, 577)]
    [InlineData(70, 576)]
    public void AddRmsNormUpdatesResidualAndMayAliasX(int rows, int cols)
    {
        using var backend = new CpuBackend(2);
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

    [Theory]
    [InlineData(1, 64, 32, 0)]
    [InlineData(5, 64, 16, 100)]
    [InlineData(3, 48, 24, 7)]
    [InlineData(70, 64, 32, 4000)]
    [InlineData(4, 80, 20, 31)]
    public void RopeRotatesHalvesLikeHf(int rows, int headDim, int half, int firstPos)
    {
        using var backend = new CpuBackend(2);
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

    [Fact]
    public void RopeTracksChangingFrequenciesScalingAndPositions()
    {
        using var backend = new CpuBackend(2);
        int headDim = 32, rows = 6, cols = 2 * headDim;
        float[] a = Enumerable.Range(0, 16).Select(i => (float)Math.Pow(10000, -i / 16.0)).ToArray();
        float[] b = Enumerable.Range(0, 8).Select(i => (float)Math.Pow(500, -i / 8.0)).ToArray();
        var calls = new (float[] Freq, float Scale, int FirstPos)[] { (a, 1f, 0), (a, 1f, 5000), (b, 1f, 3), (a, 2f, 10), (a, 1f, 1) };
        foreach (var (freq, scale, first) in calls)
        {
            var x = TestData.Random(rows * cols, first);
            var pos = Enumerable.Range(0, rows).Select(i => first + 7 * i).Reverse().ToArray();
            using var xt = TestData.Upload(backend, x, rows, cols);
            backend.Rope(xt, headDim, pos, freq, scale);
            Reference.Rope(x, rows, cols, headDim, pos, freq, scale);
            TestData.AssertClose(x, TestData.Download(backend, xt), 1e-6, 1e-5, what: $"freq={freq.Length} scale={scale} pos={first}");
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 31)]
    [InlineData(70, 1536)]
    public void SiluAndMulMatchesReference(int rows, int f)
    {
        using var backend = new CpuBackend(2);
        var gu = TestData.Random(rows * 2 * f, f, 8f);
        using var gt = TestData.Upload(backend, gu, rows, 2 * f);
        using var o = backend.Allocate(DType.F32, rows, f);
        backend.SiluAndMul(gt, o);
        TestData.AssertClose(Reference.SiluAndMul(gu, rows, f), TestData.Download(backend, o), 1e-6, 1e-5);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(33)]
    [InlineData(1000)]
    public void AddMayAlias(int n)
    {
        using var backend = new CpuBackend(2);
        var a = TestData.Random(n, 1);
        var b = TestData.Random(n, 2);
        using var at = TestData.Upload(backend, a, n);
        using var bt = TestData.Upload(backend, b, n);
        backend.Add(at, bt, bt);
        Assert.Equal(a.Zip(b, (p, q) => p + q).ToArray(), TestData.Download(backend, bt));
    }

    [Fact]
    public void CopyColumnsAndGatherRows()
    {
        using var backend = new CpuBackend(1);
        int rows = 5, cols = 13;
        var x = TestData.Random(rows * cols, 3);
        using var xt = TestData.Upload(backend, x, rows, cols);
        using var cc = backend.Allocate(DType.F32, rows, 6);
        backend.CopyColumns(xt, 4, cc);
        var expected = new float[rows * 6];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < 6; c++) expected[r * 6 + c] = x[r * cols + 4 + c];
        Assert.Equal(expected, TestData.Download(backend, cc));

        using var g = backend.Allocate(DType.F32, 3, cols);
        backend.GatherRows(xt, [4, 0, 4], g);
        Assert.Equal(x.Skip(4 * cols).Take(cols).Concat(x.Take(cols)).Concat(x.Skip(4 * cols).Take(cols)).ToArray(), TestData.Download(backend, g));
    }

    [Fact]
    public void AllocateIsZeroedAndAligned()
    {
        using var backend = new CpuBackend(1);
        using var t = backend.Allocate(DType.F32, 7, 3);
        Assert.Equal(0, t.Data % 64);
        Assert.All(TestData.Download(backend, t), v => Assert.Equal(0f, v));
        using var e = backend.Allocate(DType.I32, 0);
        Assert.Equal(0, e.ElementCount);
    }
}
