using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu;

/// <summary>How one K-row (32 output columns) of a packed panel widens to two fp32 zmm registers.</summary>
internal unsafe interface IPanelFormat
{
    static abstract int RowBytes { get; }

    static abstract void Load(byte* p, out Vector512<float> lo, out Vector512<float> hi);
}

/// <summary>
/// bf16 panels are stored interleaved [c0,c16,c1,c17,…] so one load plus a shift (columns 0-15)
/// and a mask (columns 16-31) widens them without any shuffle.
/// </summary>
internal unsafe struct Bf16Panel : IPanelFormat
{
    public static int RowBytes => 64;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(byte* p, out Vector512<float> lo, out Vector512<float> hi)
    {
        var v = Vector512.Load((uint*)p);
        lo = Avx512F.ShiftLeftLogical(v, 16).AsSingle();
        hi = (v & Vector512.Create(0xFFFF0000u)).AsSingle();
    }
}

internal unsafe struct F32Panel : IPanelFormat
{
    public static int RowBytes => 128;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(byte* p, out Vector512<float> lo, out Vector512<float> hi)
    {
        lo = Vector512.Load((float*)p);
        hi = Vector512.Load((float*)(p + 64));
    }
}

/// <summary>A compile-time row count: the JIT specialises the micro-kernel per value and drops dead rows.</summary>
internal interface IRowCount
{
    static abstract int Value { get; }
}

internal struct Rows12 : IRowCount { public static int Value => 12; }
internal struct Rows8 : IRowCount { public static int Value => 8; }
internal struct Rows4 : IRowCount { public static int Value => 4; }
internal struct Rows2 : IRowCount { public static int Value => 2; }

/// <summary>
/// Register-blocked GEMM micro-kernels over one 32-column panel: TR rows × 2 zmm accumulators
/// (12 rows = 24 accumulators, the most that fit beside the two weight registers).
/// </summary>
internal static unsafe class GemmKernels
{
    /// <summary>
    /// Bytes ahead to software-prefetch a panel streaming from DRAM: ~15% more single-thread
    /// bandwidth at batch-1 decode here than the hardware prefetcher alone.
    /// </summary>
    public const int StreamPrefetch = 2048;

    /// <summary>
    /// acc[r*32 + c] = Σ_k x[k*TR + r] * panel[k][c] for r &lt; TR. x is the row block packed
    /// K-major ([K][TR]) so every broadcast is a fixed offset from one pointer.
    /// Results go to a 32-float-per-row buffer rather than y: any call after the loop (tails, bias)
    /// makes the JIT spill all 24 accumulators inside the loop, since SysV has no callee-saved zmm.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel<TP, TR>(float* x, byte* w, int k, float* acc, bool prefetch)
        where TP : struct, IPanelFormat
        where TR : struct, IRowCount
    {
        Vector512<float> a00 = default, a01 = default;
        Vector512<float> a10 = default, a11 = default;
        Vector512<float> a20 = default, a21 = default;
        Vector512<float> a30 = default, a31 = default;
        Vector512<float> a40 = default, a41 = default;
        Vector512<float> a50 = default, a51 = default;
        Vector512<float> a60 = default, a61 = default;
        Vector512<float> a70 = default, a71 = default;
        Vector512<float> a80 = default, a81 = default;
        Vector512<float> a90 = default, a91 = default;
        Vector512<float> a100 = default, a101 = default;
        Vector512<float> a110 = default, a111 = default;
        for (int kk = 0; kk < k; kk++)
        {
            // Only the first row block of a panel streams it from DRAM; the K-blocked path reads L1.
            if (prefetch) Sse.Prefetch0(w + StreamPrefetch);
            TP.Load(w, out var w0, out var w1);
            { var b = Vector512.Create(x[0]); a00 = Avx512F.FusedMultiplyAdd(b, w0, a00); a01 = Avx512F.FusedMultiplyAdd(b, w1, a01); }
            if (TR.Value > 1) { var b = Vector512.Create(x[1]); a10 = Avx512F.FusedMultiplyAdd(b, w0, a10); a11 = Avx512F.FusedMultiplyAdd(b, w1, a11); }
            if (TR.Value > 2) { var b = Vector512.Create(x[2]); a20 = Avx512F.FusedMultiplyAdd(b, w0, a20); a21 = Avx512F.FusedMultiplyAdd(b, w1, a21); }
            if (TR.Value > 3) { var b = Vector512.Create(x[3]); a30 = Avx512F.FusedMultiplyAdd(b, w0, a30); a31 = Avx512F.FusedMultiplyAdd(b, w1, a31); }
            if (TR.Value > 4) { var b = Vector512.Create(x[4]); a40 = Avx512F.FusedMultiplyAdd(b, w0, a40); a41 = Avx512F.FusedMultiplyAdd(b, w1, a41); }
            if (TR.Value > 5) { var b = Vector512.Create(x[5]); a50 = Avx512F.FusedMultiplyAdd(b, w0, a50); a51 = Avx512F.FusedMultiplyAdd(b, w1, a51); }
            if (TR.Value > 6) { var b = Vector512.Create(x[6]); a60 = Avx512F.FusedMultiplyAdd(b, w0, a60); a61 = Avx512F.FusedMultiplyAdd(b, w1, a61); }
            if (TR.Value > 7) { var b = Vector512.Create(x[7]); a70 = Avx512F.FusedMultiplyAdd(b, w0, a70); a71 = Avx512F.FusedMultiplyAdd(b, w1, a71); }
            if (TR.Value > 8) { var b = Vector512.Create(x[8]); a80 = Avx512F.FusedMultiplyAdd(b, w0, a80); a81 = Avx512F.FusedMultiplyAdd(b, w1, a81); }
            if (TR.Value > 9) { var b = Vector512.Create(x[9]); a90 = Avx512F.FusedMultiplyAdd(b, w0, a90); a91 = Avx512F.FusedMultiplyAdd(b, w1, a91); }
            if (TR.Value > 10) { var b = Vector512.Create(x[10]); a100 = Avx512F.FusedMultiplyAdd(b, w0, a100); a101 = Avx512F.FusedMultiplyAdd(b, w1, a101); }
            if (TR.Value > 11) { var b = Vector512.Create(x[11]); a110 = Avx512F.FusedMultiplyAdd(b, w0, a110); a111 = Avx512F.FusedMultiplyAdd(b, w1, a111); }
            x += TR.Value;
            w += TP.RowBytes;
        }

        { a00.Store(acc + 0); a01.Store(acc + 16); }
        if (TR.Value > 1) { a10.Store(acc + 32); a11.Store(acc + 48); }
        if (TR.Value > 2) { a20.Store(acc + 64); a21.Store(acc + 80); }
        if (TR.Value > 3) { a30.Store(acc + 96); a31.Store(acc + 112); }
        if (TR.Value > 4) { a40.Store(acc + 128); a41.Store(acc + 144); }
        if (TR.Value > 5) { a50.Store(acc + 160); a51.Store(acc + 176); }
        if (TR.Value > 6) { a60.Store(acc + 192); a61.Store(acc + 208); }
        if (TR.Value > 7) { a70.Store(acc + 224); a71.Store(acc + 240); }
        if (TR.Value > 8) { a80.Store(acc + 256); a81.Store(acc + 272); }
        if (TR.Value > 9) { a90.Store(acc + 288); a91.Store(acc + 304); }
        if (TR.Value > 10) { a100.Store(acc + 320); a101.Store(acc + 336); }
        if (TR.Value > 11) { a110.Store(acc + 352); a111.Store(acc + 368); }
    }

    /// <summary>One row (batch-1 decode): unrolled over k so four FMA chains hide FMA latency.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel1<TP>(float* x, byte* w, int k, float* acc)
        where TP : struct, IPanelFormat
    {
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default;
        int kk = 0;
        for (; kk + 2 <= k; kk += 2)
        {
            Sse.Prefetch0(w + StreamPrefetch);
            TP.Load(w, out var w0, out var w1);
            TP.Load(w + TP.RowBytes, out var v0, out var v1);
            var s = Vector512.Create(x[kk]);
            var t = Vector512.Create(x[kk + 1]);
            a0 = Avx512F.FusedMultiplyAdd(s, w0, a0);
            a1 = Avx512F.FusedMultiplyAdd(s, w1, a1);
            b0 = Avx512F.FusedMultiplyAdd(t, v0, b0);
            b1 = Avx512F.FusedMultiplyAdd(t, v1, b1);
            w += 2 * TP.RowBytes;
        }

        if (kk < k)
        {
            TP.Load(w, out var w0, out var w1);
            var s = Vector512.Create(x[kk]);
            a0 = Avx512F.FusedMultiplyAdd(s, w0, a0);
            a1 = Avx512F.FusedMultiplyAdd(s, w1, a1);
        }

        (a0 + b0).Store(acc);
        (a1 + b1).Store(acc + 16);
    }

    /// <summary>
    /// y[r, 0..cols) = acc[r] (+ bias), or y += acc when <paramref name="accumulate"/> (later K blocks),
    /// for r &lt; rows; never writes past column N.
    /// </summary>
    public static void Epilogue(float* acc, int rows, float* y, nint ldy, int cols, float* bias, bool accumulate)
    {
        for (int r = 0; r < rows; r++, acc += 32, y += ldy)
        {
            if (cols == 32)
            {
                var lo = Vector512.Load(acc);
                var hi = Vector512.Load(acc + 16);
                if (accumulate)
                {
                    lo += Vector512.Load(y);
                    hi += Vector512.Load(y + 16);
                }
                else if (bias != null)
                {
                    lo += Vector512.Load(bias);
                    hi += Vector512.Load(bias + 16);
                }

                lo.Store(y);
                hi.Store(y + 16);
            }
            else
            {
                for (int c = 0; c < cols; c++)
                    y[c] = acc[c] + (accumulate ? y[c] : bias != null ? bias[c] : 0f);
            }
        }
    }

    /// <summary>Widens <paramref name="rows"/> K-rows of an interleaved bf16 panel into a plain f32 panel.</summary>
    public static void WidenBf16(byte* src, int rows, float* dst)
    {
        var mask = Vector512.Create(0xFFFF0000u);
        for (int i = 0; i < rows; i++, src += 64, dst += 32)
        {
            var v = Vector512.Load((uint*)src);
            Avx512F.ShiftLeftLogical(v, 16).AsSingle().Store(dst);
            (v & mask).AsSingle().Store(dst + 16);
        }
    }
}
