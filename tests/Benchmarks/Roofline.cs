using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Benchmarks;

/// <summary>
/// This machine's ceilings for managed kernels: DRAM read bandwidth and FP32 FMA throughput,
/// both measured with Vector512 code on dedicated threads, best of several repetitions.
/// </summary>
public static unsafe class Roofline
{
    // Larger than any L3 seen here (this VM reports 300 MB), so every pass comes from DRAM; ~1 GB per repetition.
    private const long BufferBytes = 512L << 20;
    private const int PassesPerRep = 2;
    private const int Repetitions = 5;

    /// <summary>GB/s (1e9 bytes) read by <paramref name="threads"/> threads, each streaming its slice with zmm loads.</summary>
    public static double MeasureReadBandwidthGBs(int threads)
    {
        if (threads <= 0) threads = Environment.ProcessorCount;
        byte* buf = (byte*)NativeMemory.AlignedAlloc((nuint)BufferBytes, 64);
        try
        {
            // Fault every page in first so the timing sees reads, not page faults.
            NativeMemory.Fill(buf, (nuint)BufferBytes, 1);
            long slice = BufferBytes / threads & ~255L;
            double seconds = Best(threads, t =>
            {
                float sink = 0;
                for (int pass = 0; pass < PassesPerRep; pass++) sink += SumSlice((float*)(buf + t * slice), slice / sizeof(float));
                return sink;
            });
            return slice * threads * (double)PassesPerRep / seconds / 1e9;
        }
        finally
        {
            NativeMemory.AlignedFree(buf);
        }
    }

    /// <summary>GFLOP/s of 512-bit FP32 FMAs (2 FLOPs per lane) over independent accumulator chains.</summary>
    public static double MeasureFmaPeakGflops(int threads)
    {
        if (threads <= 0) threads = Environment.ProcessorCount;
        const long iterations = 20_000_000;
        double seconds = Best(threads, _ => FmaChains(iterations));
        return threads * iterations * 12.0 * 16 * 2 / seconds / 1e9;
    }

    private static float SumSlice(float* p, long n)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (long i = 0; i + 64 <= n; i += 64)
        {
            a0 += Vector512.Load(p + i);
            a1 += Vector512.Load(p + i + 16);
            a2 += Vector512.Load(p + i + 32);
            a3 += Vector512.Load(p + i + 48);
        }

        return Vector512.Sum(a0 + a1 + a2 + a3);
    }

    private static float FmaChains(long iterations)
    {
        // 12 chains cover FMA latency × issue width with room to spare.
        var m = Vector512.Create(0.999999f);
        var c = Vector512.Create(1e-7f);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        Vector512<float> a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, m, c);
            a1 = Avx512F.FusedMultiplyAdd(a1, m, c);
            a2 = Avx512F.FusedMultiplyAdd(a2, m, c);
            a3 = Avx512F.FusedMultiplyAdd(a3, m, c);
            a4 = Avx512F.FusedMultiplyAdd(a4, m, c);
            a5 = Avx512F.FusedMultiplyAdd(a5, m, c);
            a6 = Avx512F.FusedMultiplyAdd(a6, m, c);
            a7 = Avx512F.FusedMultiplyAdd(a7, m, c);
            a8 = Avx512F.FusedMultiplyAdd(a8, m, c);
            a9 = Avx512F.FusedMultiplyAdd(a9, m, c);
            a10 = Avx512F.FusedMultiplyAdd(a10, m, c);
            a11 = Avx512F.FusedMultiplyAdd(a11, m, c);
        }

        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    /// <summary>Runs body(threadIndex) on every thread from a common start; returns the fastest repetition's seconds.</summary>
    private static double Best(int threads, Func<int, float> body)
    {
        double best = double.MaxValue;
        float sink = 0;
        for (int rep = 0; rep <= Repetitions; rep++)
        {
            using var start = new Barrier(threads + 1);
            var results = new float[threads];
            var workers = new Thread[threads];
            for (int t = 0; t < threads; t++)
            {
                int index = t;
                workers[t] = new Thread(() =>
                {
                    start.SignalAndWait();
                    results[index] = body(index);
                });
                workers[t].Start();
            }

            start.SignalAndWait();
            long t0 = Stopwatch.GetTimestamp();
            foreach (var w in workers) w.Join();
            double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            sink += results.Sum();

            // Repetition 0 is warm-up (tiering, page state).
            if (rep > 0) best = Math.Min(best, s);
        }

        GC.KeepAlive(sink);
        return best;
    }
}
