using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Benchmarks;

/// <summary>
/// This machine's ceilings for managed kernels: DRAM read bandwidth and FP32 FMA throughput,
/// both measured on dedicated threads, best of several repetitions; the FMA peak at the vector
/// width of the ISA under test.
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

    /// <summary>
    /// GFLOP/s of FP32 FMAs at the widest vector the given ISA runs (2 FLOPs per lane) over
    /// independent accumulator chains: the ceiling for that ISA's kernels, not the machine's.
    /// </summary>
    public static double MeasureFmaPeakGflops(int threads, CpuIsa isa)
    {
        if (threads <= 0) threads = Environment.ProcessorCount;
        const long iterations = 20_000_000;
        int lanes;
        Func<int, float> body;
        switch (isa)
        {
            case CpuIsa.Avx512: lanes = 16; body = _ => FmaChains512(iterations); break;
            case CpuIsa.Avx2: lanes = 8; body = _ => FmaChains256(iterations); break;
            case CpuIsa.Scalar: lanes = 1; body = _ => FmaChainsScalar(iterations); break;
            default: lanes = 4; body = _ => FmaChains128(iterations); break;
        }

        double seconds = Best(threads, body);
        return threads * iterations * 12.0 * lanes * 2 / seconds / 1e9;
    }

    private static float SumSlice(float* p, long n)
    {
        // Bandwidth hardly depends on the load width; use what is accelerated.
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
            for (long i = 0; i + 32 <= n; i += 32)
            {
                b0 += Vector256.Load(p + i);
                b1 += Vector256.Load(p + i + 8);
                b2 += Vector256.Load(p + i + 16);
                b3 += Vector256.Load(p + i + 24);
            }

            return Vector256.Sum(b0 + b1 + b2 + b3);
        }

        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (long i = 0; i + 16 <= n; i += 16)
        {
            a0 += Vector128.Load(p + i);
            a1 += Vector128.Load(p + i + 4);
            a2 += Vector128.Load(p + i + 8);
            a3 += Vector128.Load(p + i + 12);
        }

        return Vector128.Sum(a0 + a1 + a2 + a3);
    }

    // 12 chains cover FMA latency × issue width with room to spare.
    private static float FmaChains512(long iterations)
    {
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

    private static float FmaChains256(long iterations)
    {
        var m = Vector256.Create(0.999999f);
        var c = Vector256.Create(1e-7f);
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        Vector256<float> a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Fma.MultiplyAdd(a0, m, c);
            a1 = Fma.MultiplyAdd(a1, m, c);
            a2 = Fma.MultiplyAdd(a2, m, c);
            a3 = Fma.MultiplyAdd(a3, m, c);
            a4 = Fma.MultiplyAdd(a4, m, c);
            a5 = Fma.MultiplyAdd(a5, m, c);
            a6 = Fma.MultiplyAdd(a6, m, c);
            a7 = Fma.MultiplyAdd(a7, m, c);
            a8 = Fma.MultiplyAdd(a8, m, c);
            a9 = Fma.MultiplyAdd(a9, m, c);
            a10 = Fma.MultiplyAdd(a10, m, c);
            a11 = Fma.MultiplyAdd(a11, m, c);
        }

        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    private static float FmaChains128(long iterations)
    {
        var m = Vector128.Create(0.999999f);
        var c = Vector128.Create(1e-7f);
        Vector128<float> a0 = Vector128.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        Vector128<float> a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector128.MultiplyAddEstimate(a0, m, c);
            a1 = Vector128.MultiplyAddEstimate(a1, m, c);
            a2 = Vector128.MultiplyAddEstimate(a2, m, c);
            a3 = Vector128.MultiplyAddEstimate(a3, m, c);
            a4 = Vector128.MultiplyAddEstimate(a4, m, c);
            a5 = Vector128.MultiplyAddEstimate(a5, m, c);
            a6 = Vector128.MultiplyAddEstimate(a6, m, c);
            a7 = Vector128.MultiplyAddEstimate(a7, m, c);
            a8 = Vector128.MultiplyAddEstimate(a8, m, c);
            a9 = Vector128.MultiplyAddEstimate(a9, m, c);
            a10 = Vector128.MultiplyAddEstimate(a10, m, c);
            a11 = Vector128.MultiplyAddEstimate(a11, m, c);
        }

        return Vector128.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    private static float FmaChainsScalar(long iterations)
    {
        float a0 = 1, a1 = 1, a2 = 1, a3 = 1, a4 = 1, a5 = 1, a6 = 1, a7 = 1, a8 = 1, a9 = 1, a10 = 1, a11 = 1;
        for (long i = 0; i < iterations; i++)
        {
            a0 = a0 * 0.999999f + 1e-7f; a1 = a1 * 0.999999f + 1e-7f; a2 = a2 * 0.999999f + 1e-7f; a3 = a3 * 0.999999f + 1e-7f;
            a4 = a4 * 0.999999f + 1e-7f; a5 = a5 * 0.999999f + 1e-7f; a6 = a6 * 0.999999f + 1e-7f; a7 = a7 * 0.999999f + 1e-7f;
            a8 = a8 * 0.999999f + 1e-7f; a9 = a9 * 0.999999f + 1e-7f; a10 = a10 * 0.999999f + 1e-7f; a11 = a11 * 0.999999f + 1e-7f;
        }

        return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
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
