using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

public class LinearTests : IsaTestBase
{
    public static TheoryData<DType, int, int, int, bool> Shapes()
    {
        var data = new TheoryData<DType, int, int, int, bool>();
        int[][] shapes =
        [
            [1, 1, 1], [1, 7, 31], [3, 33, 33], [17, 577, 95], [70, 33, 31], [1, 577, 95],
            [13, 7, 64], [25, 64, 1], [2, 16, 32], [12, 100, 33], [9, 5, 96], [70, 577, 33],
            [200, 400, 65], [131, 1000, 40], [97, 192, 96], [96, 385, 32],
        ];
        foreach (var dt in new[] { DType.F32, DType.BF16, DType.F16 })
        {
            for (int i = 0; i < shapes.Length; i++)
                data.Add(dt, shapes[i][0], shapes[i][1], shapes[i][2], i % 2 == 0);
        }

        data.Add(DType.BF16, 3, 7, 1, true);
        data.Add(DType.F32, 17, 1, 95, true);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(Shapes))]
    public void MatchesScalarReference(DType dtype, int m, int k, int n, bool withBias)
    {
        using var backend = Backend(2);
        KernelCases.Linear(backend, dtype, m, k, n, withBias);
    }

    /// <summary>The full odd-size cross product; covers every row-block decomposition and both GEMM paths.</summary>
    [SkippableTheory]
    [InlineData(DType.BF16)]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    public void OddSizeCrossProduct(DType dtype)
    {
        using var backend = Backend(2);
        using var weights = new NativeWeights();
        foreach (int k in new[] { 1, 7, 33, 577 })
        {
            foreach (int n in new[] { 1, 31, 33, 95 })
            {
                var wv = weights.Make("w", dtype, [n, k], TestData.Random(n * k, k * 131 + n), out var wr);
                var b = TestData.Random(n, n);
                using var lw = backend.PrepareLinear([wv]);
                using var bt = TestData.Upload(backend, b, n);
                foreach (int m in new[] { 1, 3, 17, 24, 70 })
                {
                    var x = TestData.Random(m * k, m);
                    using var xt = TestData.Upload(backend, x, m, k);
                    using var yt = backend.Allocate(DType.F32, m, n);
                    bool withBias = (m + n) % 2 == 0;
                    backend.Linear(xt, lw, withBias ? bt : null, yt);
                    var (expected, scale) = Reference.Linear(x, m, k, wr, n, withBias ? b : null);
                    TestData.AssertClose(expected, TestData.Download(backend, yt), 1e-6, 1e-5, scale, $"{dtype} M={m} K={k} N={n} bias={withBias}");
                }
            }
        }
    }

    [SkippableTheory]
    [InlineData(DType.BF16)]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    public void FusedPartsStackAlongN(DType dtype)
    {
        using var backend = Backend(2);
        using var weights = new NativeWeights();
        int k = 45;
        int[] ns = [40, 9, 9];
        var parts = new List<WeightView>();
        var all = new List<float>();
        for (int i = 0; i < ns.Length; i++)
        {
            parts.Add(weights.Make($"p{i}", dtype, [ns[i], k], TestData.Random(ns[i] * k, 10 + i), out var r));
            all.AddRange(r);
        }

        int n = ns.Sum(), m = 5;
        using var lw = backend.PrepareLinear(parts);
        Assert.Equal(n, lw.OutFeatures);
        var x = TestData.Random(m * k, 99);
        using var xt = TestData.Upload(backend, x, m, k);
        using var yt = backend.Allocate(DType.F32, m, n);
        backend.Linear(xt, lw, null, yt);
        var (expected, scale) = Reference.Linear(x, m, k, all.ToArray(), n, null);
        TestData.AssertClose(expected, TestData.Download(backend, yt), 1e-6, 1e-5, scale);
    }

    [SkippableFact]
    public void MismatchedPartsNameTheWeight()
    {
        using var backend = Backend(1);
        using var weights = new NativeWeights();
        var a = weights.Make("q_proj", DType.BF16, [4, 8], new float[32], out _);
        var b = weights.Make("k_proj", DType.BF16, [4, 9], new float[36], out _);
        var c = weights.Make("v_proj", DType.F32, [4, 8], new float[32], out _);
        Assert.Contains("k_proj", Assert.Throws<ArgumentException>(() => backend.PrepareLinear([a, b])).Message);
        Assert.Contains("v_proj", Assert.Throws<ArgumentException>(() => backend.PrepareLinear([a, c])).Message);
    }

    [SkippableFact]
    public void SingleThreadedMatchesMultiThreaded()
    {
        using var one = Backend(1);
        using var two = Backend(2);
        using var weights = new NativeWeights();
        int m = 29, k = 130, n = 300;
        var wv = weights.Make("w", DType.BF16, [n, k], TestData.Random(n * k, 5), out _);
        var x = TestData.Random(m * k, 6);
        float[] Run(CpuBackend be)
        {
            using var lw = be.PrepareLinear([wv]);
            using var xt = TestData.Upload(be, x, m, k);
            using var yt = be.Allocate(DType.F32, m, n);
            be.Linear(xt, lw, null, yt);
            return TestData.Download(be, yt);
        }

        Assert.Equal(Run(one), Run(two));
    }
}
