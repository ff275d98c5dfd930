using System.Runtime.CompilerServices;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu;

/// <summary>How one K-row of a 32-column packed panel is stored.</summary>
internal interface IPanelFormat
{
    static abstract int RowBytes { get; }

    static abstract bool IsBf16 { get; }
}

/// <summary>
/// bf16 panels are stored interleaved [c0,c16,c1,c17,…]: 32-bit lane i holds columns i and 16+i, so
/// one load plus a shift (columns i..i+L) and a mask (columns 16+i..16+i+L) widens L lanes of each
/// half without any shuffle, at any vector width L.
/// </summary>
internal struct Bf16Panel : IPanelFormat
{
    public static int RowBytes => 64;

    public static bool IsBf16 => true;
}

/// <summary>f32 panels are plain [c0..c31]; lane group i reads columns i.. and 16+i.. the same way.</summary>
internal struct F32Panel : IPanelFormat
{
    public static int RowBytes => 128;

    public static bool IsBf16 => false;
}

/// <summary>A compile-time count: the JIT specialises the micro-kernel per value and drops dead rows.</summary>
internal interface IRowCount
{
    static abstract int Value { get; }
}

internal struct Rows12 : IRowCount { public static int Value => 12; }
internal struct Rows8 : IRowCount { public static int Value => 8; }
internal struct Rows6 : IRowCount { public static int Value => 6; }
internal struct Rows4 : IRowCount { public static int Value => 4; }
internal struct Rows2 : IRowCount { public static int Value => 2; }
internal struct Rows1 : IRowCount { public static int Value => 1; }

/// <summary>
/// Register-blocked GEMM micro-kernels. A 32-column panel row splits into 16/L lane groups; group g
/// covers columns [gL, gL+L) ("lo") and [16+gL, 16+gL+L) ("hi"), which is exactly what one bf16
/// pair load widens to. A kernel call computes TR rows × one lane group (2 accumulators a row), so
/// the block is as tall as the register file allows: 12 rows = 24 zmm on AVX-512, 6 rows = 12 ymm
/// on AVX2. Accumulators go to acc, 32 floats per row, at the group's columns.
/// </summary>
internal static unsafe class GemmKernels<S, V>
    where S : struct, ISimd<V>
    where V : unmanaged
{
    /// <summary>
    /// Bytes ahead to software-prefetch a panel streaming from DRAM: ~15% more single-thread
    /// bandwidth at batch-1 decode here than the hardware prefetcher alone.
    /// </summary>
    public const int StreamPrefetch = 2048;

    /// <summary>Lane groups per 32-column panel.</summary>
    public static int Groups => 16 / S.Lanes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadPair<TP>(byte* w, out V lo, out V hi)
        where TP : struct, IPanelFormat
    {
        if (TP.IsBf16)
        {
            S.LoadBf16Pair(w, out lo, out hi);
        }
        else
        {
            lo = S.Load((float*)w);
            hi = S.Load((float*)(w + 64));
        }
    }

    /// <summary>
    /// acc[r*32 + c] = Σ_k x[k*TR + r] * panel[k][c] for r &lt; TR and the lane group's columns; w
    /// and acc already point at the group. x is the row block packed K-major ([K][TR]) so every
    /// broadcast is a fixed offset from one pointer. Results go to a 32-float-per-row buffer rather
    /// than y: any call after the loop (tails, bias) makes the JIT spill all accumulators inside
    /// the loop, since SysV has no callee-saved vector registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel<TP, TR>(float* x, byte* w, int k, float* acc, bool prefetch)
        where TP : struct, IPanelFormat
        where TR : struct, IRowCount
    {
        V a00 = S.Zero, a01 = S.Zero;
        V a10 = S.Zero, a11 = S.Zero;
        V a20 = S.Zero, a21 = S.Zero;
        V a30 = S.Zero, a31 = S.Zero;
        V a40 = S.Zero, a41 = S.Zero;
        V a50 = S.Zero, a51 = S.Zero;
        V a60 = S.Zero, a61 = S.Zero;
        V a70 = S.Zero, a71 = S.Zero;
        V a80 = S.Zero, a81 = S.Zero;
        V a90 = S.Zero, a91 = S.Zero;
        V a100 = S.Zero, a101 = S.Zero;
        V a110 = S.Zero, a111 = S.Zero;
        for (int kk = 0; kk < k; kk++)
        {
            // Only the first row block of a panel streams it from DRAM; the K-blocked path reads L1.
            if (prefetch) S.Prefetch(w + StreamPrefetch);
            LoadPair<TP>(w, out var w0, out var w1);
            { var b = S.Splat(x[0]); a00 = S.MulAdd(b, w0, a00); a01 = S.MulAdd(b, w1, a01); }
            if (TR.Value > 1) { var b = S.Splat(x[1]); a10 = S.MulAdd(b, w0, a10); a11 = S.MulAdd(b, w1, a11); }
            if (TR.Value > 2) { var b = S.Splat(x[2]); a20 = S.MulAdd(b, w0, a20); a21 = S.MulAdd(b, w1, a21); }
            if (TR.Value > 3) { var b = S.Splat(x[3]); a30 = S.MulAdd(b, w0, a30); a31 = S.MulAdd(b, w1, a31); }
            if (TR.Value > 4) { var b = S.Splat(x[4]); a40 = S.MulAdd(b, w0, a40); a41 = S.MulAdd(b, w1, a41); }
            if (TR.Value > 5) { var b = S.Splat(x[5]); a50 = S.MulAdd(b, w0, a50); a51 = S.MulAdd(b, w1, a51); }
            if (TR.Value > 6) { var b = S.Splat(x[6]); a60 = S.MulAdd(b, w0, a60); a61 = S.MulAdd(b, w1, a61); }
            if (TR.Value > 7) { var b = S.Splat(x[7]); a70 = S.MulAdd(b, w0, a70); a71 = S.MulAdd(b, w1, a71); }
            if (TR.Value > 8) { var b = S.Splat(x[8]); a80 = S.MulAdd(b, w0, a80); a81 = S.MulAdd(b, w1, a81); }
            if (TR.Value > 9) { var b = S.Splat(x[9]); a90 = S.MulAdd(b, w0, a90); a91 = S.MulAdd(b, w1, a91); }
            if (TR.Value > 10) { var b = S.Splat(x[10]); a100 = S.MulAdd(b, w0, a100); a101 = S.MulAdd(b, w1, a101); }
            if (TR.Value > 11) { var b = S.Splat(x[11]); a110 = S.MulAdd(b, w0, a110); a111 = S.MulAdd(b, w1, a111); }
            x += TR.Value;
            w += TP.RowBytes;
        }

        { S.Store(a00, acc + 0); S.Store(a01, acc + 16); }
        if (TR.Value > 1) { S.Store(a10, acc + 32); S.Store(a11, acc + 48); }
        if (TR.Value > 2) { S.Store(a20, acc + 64); S.Store(a21, acc + 80); }
        if (TR.Value > 3) { S.Store(a30, acc + 96); S.Store(a31, acc + 112); }
        if (TR.Value > 4) { S.Store(a40, acc + 128); S.Store(a41, acc + 144); }
        if (TR.Value > 5) { S.Store(a50, acc + 160); S.Store(a51, acc + 176); }
        if (TR.Value > 6) { S.Store(a60, acc + 192); S.Store(a61, acc + 208); }
        if (TR.Value > 7) { S.Store(a70, acc + 224); S.Store(a71, acc + 240); }
        if (TR.Value > 8) { S.Store(a80, acc + 256); S.Store(a81, acc + 272); }
        if (TR.Value > 9) { S.Store(a90, acc + 288); S.Store(a91, acc + 304); }
        if (TR.Value > 10) { S.Store(a100, acc + 320); S.Store(a101, acc + 336); }
        if (TR.Value > 11) { S.Store(a110, acc + 352); S.Store(a111, acc + 368); }
    }

    /// <summary>
    /// One row (batch-1 decode) over TG lane groups (1 or 2) at once, unrolled over k so independent
    /// FMA chains hide the FMA latency. With 2 groups an AVX2 panel is one pass, not two.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel1<TP, TG>(float* x, byte* w, int k, float* acc)
        where TP : struct, IPanelFormat
        where TG : struct, IRowCount
    {
        int g1 = S.Lanes * 4; // byte offset of the second lane group inside a panel row (bf16 and f32 alike)
        V a0 = S.Zero, a1 = S.Zero, b0 = S.Zero, b1 = S.Zero;
        V c0 = S.Zero, c1 = S.Zero, d0 = S.Zero, d1 = S.Zero;
        int kk = 0;
        for (; kk + 2 <= k; kk += 2)
        {
            S.Prefetch(w + StreamPrefetch);
            var s = S.Splat(x[kk]);
            var t = S.Splat(x[kk + 1]);
            LoadPair<TP>(w, out var w0, out var w1);
            LoadPair<TP>(w + TP.RowBytes, out var v0, out var v1);
            a0 = S.MulAdd(s, w0, a0);
            a1 = S.MulAdd(s, w1, a1);
            b0 = S.MulAdd(t, v0, b0);
            b1 = S.MulAdd(t, v1, b1);
            if (TG.Value > 1)
            {
                LoadPair<TP>(w + g1, out var u0, out var u1);
                LoadPair<TP>(w + TP.RowBytes + g1, out var z0, out var z1);
                c0 = S.MulAdd(s, u0, c0);
                c1 = S.MulAdd(s, u1, c1);
                d0 = S.MulAdd(t, z0, d0);
                d1 = S.MulAdd(t, z1, d1);
            }

            w += 2 * TP.RowBytes;
        }

        if (kk < k)
        {
            var s = S.Splat(x[kk]);
            LoadPair<TP>(w, out var w0, out var w1);
            a0 = S.MulAdd(s, w0, a0);
            a1 = S.MulAdd(s, w1, a1);
            if (TG.Value > 1)
            {
                LoadPair<TP>(w + g1, out var u0, out var u1);
                c0 = S.MulAdd(s, u0, c0);
                c1 = S.MulAdd(s, u1, c1);
            }
        }

        S.Store(S.Add(a0, b0), acc);
        S.Store(S.Add(a1, b1), acc + 16);
        if (TG.Value > 1)
        {
            S.Store(S.Add(c0, d0), acc + S.Lanes);
            S.Store(S.Add(c1, d1), acc + 16 + S.Lanes);
        }
    }

    /// <summary>
    /// y[r, 0..cols) = acc[r] (+ bias), or y += acc when <paramref name="accumulate"/> (later K blocks),
    /// for r &lt; rows; never writes past column N.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Epilogue(float* acc, int rows, float* y, nint ldy, int cols, float* bias, bool accumulate)
    {
        for (int r = 0; r < rows; r++, acc += 32, y += ldy)
        {
            if (cols == 32)
            {
                for (int c = 0; c < 32; c += S.Lanes)
                {
                    var v = S.Load(acc + c);
                    if (accumulate) v = S.Add(v, S.Load(y + c));
                    else if (bias != null) v = S.Add(v, S.Load(bias + c));
                    S.Store(v, y + c);
                }
            }
            else
            {
                for (int c = 0; c < cols; c++)
                    y[c] = acc[c] + (accumulate ? y[c] : bias != null ? bias[c] : 0f);
            }
        }
    }

    /// <summary>Widens <paramref name="rows"/> K-rows of an interleaved bf16 panel into a plain f32 panel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WidenBf16(byte* src, int rows, float* dst)
    {
        for (int i = 0; i < rows; i++, src += 64, dst += 32)
        {
            for (int g = 0; g < 16; g += S.Lanes)
            {
                S.LoadBf16Pair(src + g * 4, out var lo, out var hi);
                S.Store(lo, dst + g);
                S.Store(hi, dst + 16 + g);
            }
        }
    }
}
