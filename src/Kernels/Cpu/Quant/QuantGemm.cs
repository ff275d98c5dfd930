using System.Runtime.CompilerServices;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// y[M,N] = x[M,K]·Wᵀ for a <see cref="QuantLinearWeight"/>, written once over the ISA seam. Each
/// activation row is first rounded to int8 exactly as ggml does for the weight's type
/// (<see cref="ActivationQuant"/>: Q8_0 blocks, or Q8_K super-blocks for K-quants), so both paths
/// compute llama.cpp's products; against fp32 activations the error is that rounding, at most half
/// a step (max|x| of the block / 127) per element.
/// <para>
/// Few rows (decode, small batches): int8 dot products per weight group,
/// Σ_groups w_scale·x_scale·(int8 dot) − Σ_groups w_min·x_scale·Σx_q, exact in int32
/// (<see cref="ISimd{V}.DotI8x64"/>, <see cref="ISimd{V}.DotU4x64"/>).
/// </para>
/// <para>
/// Many rows (prefill, large batches): compute-bound, so 32-row panels of W are decoded to fp32 one
/// K block at a time (L1-sized) and the fp32 micro-kernels of <see cref="CpuGemm{S,V}"/> multiply them
/// by the rounded activations, amortising the decode over every row.
/// </para>
/// </summary>
internal static unsafe class QuantGemm<S, V>
    where S : struct, ISimd<V>
    where V : unmanaged
{
    /// <summary>From this many rows the fp32-panel path wins over int8 dot products.</summary>
    internal static int DecodeMinRows = 16;

    private const int ItemsPerThread = 8;

    private struct Job
    {
        public QuantLayout L;
        public float* X;
        public sbyte* Xq;
        public float* Xs;
        public float* Xsum;
        public float* Y;
        public float* Bias;
        public float* Widen;
        public long YStride;
        public int M;
        public int XqStride;
        public int RowsPerItem;
        public int PanelsPerItem;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Linear(CpuThreadPool pool, ScratchBuffer scratch, float* x, int m, QuantLinearWeight w, float* bias, float* y)
    {
        if (m == 0 || w.OutFeatures == 0) return;
        int k = w.InFeatures, n = w.OutFeatures;
        bool decoded = m >= DecodeMinRows;

        // Activation codes per row (KPad bytes), per-group scales and sums; for the decoded path also
        // the rounded activations packed for the fp32 micro-kernels, and a K block of W per thread.
        int kpad = w.Segments[0].Layout.KPad, groupStride = w.Segments.Max(s => s.Layout.GroupStride);
        long codeBytes = ((long)m * kpad + 63) & ~63L, scaleBytes = 2L * m * groupStride * sizeof(float);
        long xFloats = decoded ? ((long)m * k + 15) & ~15L : 0;
        long widenFloats = decoded ? (long)pool.ThreadCount * CpuGemm<S, V>.KBlock * PackedLinearWeight.PanelWidth : 0;
        using var lease = scratch.Rent(codeBytes + scaleBytes + 2 * xFloats * sizeof(float) + widenFloats * sizeof(float) + 64);
        var xq = (sbyte*)lease.Data;
        var xs = (float*)(lease.Data + codeBytes);
        var xsum = xs + (long)m * groupStride;
        var rounded = xsum + (long)m * groupStride;
        var packed = rounded + xFloats;
        var widen = packed + xFloats;
        (ActivationQuant.Scheme Scheme, int Group) current = default;
        foreach (var seg in w.Segments)
        {
            var l = seg.Layout;
            var scheme = ActivationQuant.SchemeFor(l.Source);
            if (current != (scheme, l.Group))
            {
                current = (scheme, l.Group);
                var qj = new QuantizeJob
                {
                    X = x, K = k, KPad = kpad, GroupStride = groupStride, Scheme = scheme, Group = l.Group,
                    Xq = xq, Xs = xs, Xsum = xsum, Rounded = decoded ? rounded : null,
                };
                pool.For(m, &QuantizeItem, &qj);
                if (decoded)
                {
                    int blocks = 0;
                    for (int r = 0; r < m; r += CpuGemm<S, V>.BlockRows(m - r)) blocks++;
                    var pack = new CpuGemm<S, V>.PackJob { Src = rounded, Dst = packed, M = m, K = k };
                    pool.For(blocks, &CpuGemm<S, V>.PackItem, &pack);
                }
            }

            var job = new Job
            {
                L = l, X = packed, Xq = xq, Xs = xs, Xsum = xsum, Y = y, Bias = bias, Widen = widen, YStride = n, M = m,
                XqStride = groupStride,
            };
            if (decoded)
            {
                int panels = (l.Rows + 31) / 32;
                int items = Math.Min(panels, pool.ThreadCount == 1 ? 1 : pool.ThreadCount * ItemsPerThread);
                job.PanelsPerItem = (panels + items - 1) / items;
                items = (panels + job.PanelsPerItem - 1) / job.PanelsPerItem;
                pool.For(items, &PanelItem, &job);
            }
            else
            {
                int items = Math.Min(l.Rows, pool.ThreadCount == 1 ? 1 : pool.ThreadCount * ItemsPerThread);
                job.RowsPerItem = (l.Rows + items - 1) / items;
                items = (l.Rows + job.RowsPerItem - 1) / job.RowsPerItem;
                pool.For(items, &DotItem, &job);
            }
        }
    }

    private struct QuantizeJob
    {
        public float* X;
        public sbyte* Xq;
        public float* Xs;
        public float* Xsum;
        public float* Rounded;
        public int K;
        public int KPad;
        public int GroupStride;
        public int Group;
        public ActivationQuant.Scheme Scheme;
    }

    private static void QuantizeItem(void* ctx, int r, int thread)
    {
        var j = (QuantizeJob*)ctx;
        float* x = j->X + (long)r * j->K;
        sbyte* q = j->Xq + (long)r * j->KPad;
        float* xs = j->Xs + (long)r * j->GroupStride;
        ActivationQuant.Row(x, j->K, j->KPad, j->Scheme, j->Group, j->GroupStride, q, xs, j->Xsum + (long)r * j->GroupStride);
        if (j->Rounded != null)
        {
            float* dst = j->Rounded + (long)r * j->K;
            for (int i = 0; i < j->K; i++) dst[i] = q[i] * xs[i / j->Group];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotItem(void* ctx, int item, int thread)
    {
        var j = (Job*)ctx;
        ref var l = ref j->L;
        int r0 = item * j->RowsPerItem, r1 = Math.Min(l.Rows, r0 + j->RowsPerItem);
        int groups = l.KPad / l.Group, chunks = l.KPad / QuantSegment.Chunk, perChunk = QuantSegment.Chunk / l.Group;
        float* c = stackalloc float[l.GroupStride];
        bool u4 = l.Codes == QuantCodes.U4, g16 = l.Group == 16;
        for (int r = r0; r < r1; r++)
        {
            byte* codes = l.CodesOf(r);
            float* ws = l.ScalesOf(r), wm = l.MinsOf(r);
            float bias = j->Bias != null ? j->Bias[l.Column + r] : 0f;
            for (int mi = 0; mi < j->M; mi++)
            {
                float* xs = j->Xs + (long)mi * j->XqStride, xsum = j->Xsum + (long)mi * j->XqStride;
                sbyte* xq = j->Xq + (long)mi * l.KPad;
                for (int g = 0; g < groups; g += S.Lanes) S.Store(S.Mul(S.Load(ws + g), S.Load(xs + g)), c + g);
                V a0 = S.Zero, a1 = S.Zero;
                int ch = 0;
                if (u4)
                {
                    for (; ch + 2 <= chunks; ch += 2)
                    {
                        a0 = S.DotU4x64(codes + ch * 32, xq + ch * 64, c + ch * 2, a0);
                        a1 = S.DotU4x64(codes + ch * 32 + 32, xq + ch * 64 + 64, c + ch * 2 + 2, a1);
                    }

                    if (ch < chunks) a0 = S.DotU4x64(codes + ch * 32, xq + ch * 64, c + ch * 2, a0);

                    // Σ_g min_g · x_scale_g · Σ codes_g, with Q4_0's min = 8 · scale.
                    V m0 = S.Zero;
                    float* mins = wm != null ? wm : ws;
                    for (int g = 0; g < groups; g += S.Lanes) m0 = S.MulAdd(S.Load(mins + g), S.Load(xsum + g), m0);
                    a1 = S.Sub(a1, wm != null ? m0 : S.Mul(m0, S.Splat(8f)));
                }
                else
                {
                    var w8 = (sbyte*)codes;
                    for (; ch + 2 <= chunks; ch += 2)
                    {
                        a0 = S.DotI8x64(w8 + ch * 64, xq + ch * 64, c + ch * perChunk, g16, a0);
                        a1 = S.DotI8x64(w8 + ch * 64 + 64, xq + ch * 64 + 64, c + (ch + 1) * perChunk, g16, a1);
                    }

                    if (ch < chunks) a0 = S.DotI8x64(w8 + ch * 64, xq + ch * 64, c + ch * perChunk, g16, a0);
                }

                j->Y[mi * j->YStride + l.Column + r] = S.Sum(S.Add(a0, a1)) + bias;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelItem(void* ctx, int item, int thread)
    {
        var j = (Job*)ctx;
        ref var l = ref j->L;
        int m = j->M, k = l.K;
        int panels = (l.Rows + 31) / 32;
        int p0 = item * j->PanelsPerItem, p1 = Math.Min(panels, p0 + j->PanelsPerItem);
        float* widen = j->Widen + (long)thread * CpuGemm<S, V>.KBlock * PackedLinearWeight.PanelWidth;
        float* acc = stackalloc float[CpuGemm<S, V>.MaxRowBlock * PackedLinearWeight.PanelWidth];
        float* row = stackalloc float[CpuGemm<S, V>.KBlock];
        for (int c0 = 0; c0 < m; c0 += CpuGemm<S, V>.RowChunk)
        {
            int c1 = Math.Min(m, c0 + CpuGemm<S, V>.RowChunk);
            for (int p = p0; p < p1; p++)
            {
                int n0 = p * 32, cols = Math.Min(32, l.Rows - n0);
                float* bias = j->Bias != null ? j->Bias + l.Column + n0 : null;
                for (int k0 = 0; k0 < k; k0 += CpuGemm<S, V>.KBlock)
                {
                    int kn = Math.Min(CpuGemm<S, V>.KBlock, k - k0);
                    DecodePanel(ref l, n0, cols, k0, kn, row, widen);
                    for (int r = c0; r < c1;)
                    {
                        int rows = CpuGemm<S, V>.BlockRows(m - r);
                        CpuGemm<S, V>.RunRows<F32Panel>(rows, j->X + (long)r * k + (long)k0 * rows, (byte*)widen, kn, acc, prefetch: false);
                        GemmKernels<S, V>.Epilogue(acc, rows, j->Y + r * j->YStride + l.Column + n0, (nint)j->YStride, cols, bias, accumulate: k0 > 0);
                        r += rows;
                    }
                }
            }
        }
    }

    /// <summary>Rows n0..n0+cols, elements k0..k0+kn, decoded to fp32 as a K-major panel [kn][32] (missing rows zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodePanel(ref QuantLayout l, int n0, int cols, int k0, int kn, float* row, float* panel)
    {
        sbyte* unpacked = stackalloc sbyte[QuantSegment.Chunk];
        for (int c = 0; c < 32; c++)
        {
            if (c >= cols)
            {
                for (int kk = 0; kk < kn; kk++) panel[kk * 32 + c] = 0f;
                continue;
            }

            byte* codes = l.CodesOf(n0 + c);
            float* ws = l.ScalesOf(n0 + c), wm = l.MinsOf(n0 + c);
            if (l.Codes == QuantCodes.I8)
            {
                var q = (sbyte*)codes + k0;
                for (int kk = 0; kk < kn; kk += S.Lanes)
                    S.Store(S.Mul(S.LoadI8(q + kk), S.Splat(ws[(k0 + kk) / l.Group])), row + kk);
            }
            else
            {
                // k0 is a multiple of 192, so whole 64-element chunks.
                for (int kk = 0; kk < kn; kk += QuantSegment.Chunk)
                {
                    byte* b = codes + (k0 + kk) / 2;
                    for (int i = 0; i < 32; i++)
                    {
                        unpacked[i] = (sbyte)(b[i] & 0xF);
                        unpacked[32 + i] = (sbyte)(b[i] >> 4);
                    }

                    int end = Math.Min(QuantSegment.Chunk, kn - kk);
                    for (int e = 0; e < end; e += S.Lanes)
                    {
                        int g = (k0 + kk + e) / 32;
                        var min = S.Splat(wm != null ? -wm[g] : -8f * ws[g]);
                        S.Store(S.MulAdd(S.LoadI8(unpacked + e), S.Splat(ws[g]), min), row + kk + e);
                    }
                }
            }

            for (int kk = 0; kk < kn; kk++) panel[kk * 32 + c] = row[kk];
        }
    }
}
