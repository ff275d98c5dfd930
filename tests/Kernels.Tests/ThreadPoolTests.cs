using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

public unsafe class ThreadPoolTests
{
    private static void Count(void* ctx, int item, int thread) => Interlocked.Increment(ref ((int*)ctx)[item]);

    [Fact]
    public void SurvivesManyBackToBackDispatches()
    {
        using var pool = new CpuThreadPool(2, idleParkMicroseconds: 200);
        var counts = new int[37];
        fixed (int* c = counts)
        {
            for (int i = 0; i < 20_000; i++)
            {
                pool.For(1 + i % 37, &Count, c);
                if (i % 5000 == 0) Thread.Sleep(2); // let the worker park, then wake it again
            }
        }

        for (int item = 0; item < 37; item++)
        {
            int expected = Enumerable.Range(0, 20_000).Count(i => 1 + i % 37 > item);
            Assert.Equal(expected, counts[item]);
        }
    }

    [Fact]
    public void ManyLinearCallsStayCorrect()
    {
        using var backend = new CpuBackend(2);
        using var weights = new NativeWeights();
        int k = 40, n = 70;
        var wv = weights.Make("w", DType.BF16, [n, k], TestData.Random(n * k, 1), out var wr);
        using var lw = backend.PrepareLinear([wv]);
        var x = TestData.Random(3 * k, 2);
        using var xt = TestData.Upload(backend, x, 3, k);
        using var yt = backend.Allocate(DType.F32, 3, n);
        var (expected, scale) = Reference.Linear(x, 3, k, wr, n, null);
        for (int i = 0; i < 3000; i++)
        {
            var rows = 1 + i % 3;
            using var xs = xt.SliceRows(0, rows);
            using var ys = yt.SliceRows(0, rows);
            backend.Linear(xs, lw, null, ys);
        }

        TestData.AssertClose(expected, TestData.Download(backend, yt), 1e-6, 1e-5, scale);
    }

    private static void Throw(void* ctx, int item, int thread)
    {
        if (item == 3) throw new InvalidOperationException("boom");
    }

    [Fact]
    public void ItemFailureSurfacesAndPoolKeepsWorking()
    {
        using var pool = new CpuThreadPool(2);
        var e = Assert.Throws<AggregateException>(() => pool.For(8, &Throw, null));
        Assert.IsType<InvalidOperationException>(e.InnerException);
        var counts = new int[4];
        fixed (int* c = counts) pool.For(4, &Count, c);
        Assert.Equal(new[] { 1, 1, 1, 1 }, counts);
    }

    [Fact]
    public void DisposeStopsWorkers()
    {
        var backend = new CpuBackend(3);
        Assert.Equal(3, backend.Pool.ThreadCount);
        Assert.Equal(2, backend.Pool.LiveWorkers);
        backend.Dispose();
        Assert.Equal(0, backend.Pool.LiveWorkers);
    }

    [Fact]
    public void DefaultThreadCountIsProcessorCount()
    {
        using var backend = new CpuBackend();
        Assert.Equal(Environment.ProcessorCount, backend.Pool.ThreadCount);
    }
}
