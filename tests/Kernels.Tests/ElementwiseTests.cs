using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

public class ElementwiseTests : IsaTestBase
{
    [SkippableTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void EmbeddingGathersRowsAsF32(DType dtype)
    {
        using var backend = Backend(2);
        KernelCases.Embedding(backend, dtype);
    }

    [SkippableTheory]
    [InlineData(DType.F32, DType.F32)]
    [InlineData(DType.BF16, DType.F32)]
    [InlineData(DType.F16, DType.F32)]
    [InlineData(DType.BF16, DType.BF16)]
    [InlineData(DType.F16, DType.F16)]
    [InlineData(DType.F32, DType.BF16)]
    public void UploadConverts(DType from, DType to)
    {
        using var backend = Backend(1);
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

    [SkippableTheory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(17, 577)]
    [InlineData(70, 576)]
    public void RmsNormMatchesReference(int rows, int cols)
    {
        using var backend = Backend(2);
        KernelCases.RmsNorm(backend, rows, cols);
    }

    [SkippableTheory]
    [InlineData(1, 9)]
    [InlineData(17, 577)]
    [InlineData(70, 576)]
    public void AddRmsNormUpdatesResidualAndMayAliasX(int rows, int cols)
    {
        using var backend = Backend(2);
        KernelCases.AddRmsNorm(backend, rows, cols);
    }

    [SkippableTheory]
    [InlineData(1, 64, 32, 0)]
    [InlineData(5, 64, 16, 100)]
    [InlineData(3, 48, 24, 7)]
    [InlineData(70, 64, 32, 4000)]
    [InlineData(4, 80, 20, 31)]
    public void RopeRotatesHalvesLikeHf(int rows, int headDim, int half, int firstPos)
    {
        using var backend = Backend(2);
        KernelCases.Rope(backend, rows, headDim, half, firstPos);
    }

    [SkippableFact]
    public void RopeTracksChangingFrequenciesScalingAndPositions()
    {
        using var backend = Backend(2);
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

    [SkippableTheory]
    [InlineData(1, 1)]
    [InlineData(3, 31)]
    [InlineData(70, 1536)]
    public void SiluAndMulMatchesReference(int rows, int f)
    {
        using var backend = Backend(2);
        KernelCases.SiluAndMul(backend, rows, f);
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(33)]
    [InlineData(1000)]
    public void AddMayAlias(int n)
    {
        using var backend = Backend(2);
        var a = TestData.Random(n, 1);
        var b = TestData.Random(n, 2);
        using var at = TestData.Upload(backend, a, n);
        using var bt = TestData.Upload(backend, b, n);
        backend.Add(at, bt, bt);
        Assert.Equal(a.Zip(b, (p, q) => p + q).ToArray(), TestData.Download(backend, bt));
    }

    [SkippableFact]
    public void CopyColumnsAndGatherRows()
    {
        using var backend = Backend(1);
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

    [SkippableFact]
    public void AllocateIsZeroedAndAligned()
    {
        using var backend = Backend(1);
        using var t = backend.Allocate(DType.F32, 7, 3);
        Assert.Equal(0, t.Data % 64);
        Assert.All(TestData.Download(backend, t), v => Assert.Equal(0f, v));
        using var e = backend.Allocate(DType.I32, 0);
        Assert.Equal(0, e.ElementCount);
    }
}
