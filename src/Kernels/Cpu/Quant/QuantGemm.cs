using System.Runtime.CompilerServices;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// y[M,N] = x[M,K]·Wᵀ for a <see cref="QuantLinearWeight"/>, written once over the ISA seam.
/// <para>
/// Few rows (decode, small batches): each activation row is quantized to int8 per group of the
/// weight's scale group (32, or 16 for Q6_K), as ggml's vec_dot quantizes to Q8 blocks, and each
/// output is Σ_groups w_scale·x_scale·(int8 dot) − Σ_groups w_min·x_scale·Σx_q, the dot products in
/// exact int32 (<see cref="ISimd{V}.DotI8x64"/>, <see cref="ISimd{V}.DotU4x64"/>). The error against
/// the dequantized weights in fp32 is that of rounding x to 8 bits per group: relative ≤ 1/254 of the
/// group's largest |x| per element.
/// </para>
/// <para>
/// Many rows (prefill, large batches): compute-bound, so 32-row panels of W are decoded to fp32 one
/// K block at a time (L1-sized) and the fp32 GEMM micro-kernels of <see cref="CpuGemm{S,V}"/> run on
/// them, amortising the decode over every row; here x is not quantized at all.
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
        if (m >= DecodeMinRows)
        {
            LinearDecoded(pool, scratch, x, m, w, bias, y);
            return;
        }

        // Activation codes per row: KPad bytes, then per-group scales and sums for each group size used.
        int kpad = w.Segments[0].Layout.KPad, groupStride = w.Segments.Max(s => s.Layout.GroupStride);
        long perRow = kpad + 2L * groupStride * sizeof(float);
        using var lease = scratch.Rent(2 * (long)m * perRow + 64);
        var xq = (sbyte*)lease.Data;
        var xs = (float*)(lease.Data + (long)m * kpad);
        int quantizedFor = 0;
        foreach (var seg in w.Segments)
        {
            var l = seg.Layout;
            if (quantizedFor != l.Group)
            {
                for (int r = 0; r < m; r++)
                    QuantizeRow(x + (long)r * k, k, kpad, l.Group, groupStride, xq + (long)r * kpad, xs + (long)r * groupStride, xs + (long)(m + r) * groupStride);
                quantizedFor = l.Group;
            }

            var job = new Job
            {
                L = l, Xq = xq, Xs = xs, Xsum = xs + (long)m * groupStride, Y = y, Bias = bias, YStride = n, M = m,
                XqStride = groupStride,
            };
            int items = Math.Min(l.Rows, pool.ThreadCount == 1 ? 1 : pool.ThreadCount * ItemsPerThread);
            job.RowsPerItem = (l.Rows + items - 1) / items;
            items = (l.Rows + job.RowsPerItem - 1) / job.RowsPerItem;
            pool.For(items, &DotItem, &job);
        }
    }

    /// <summary>
    /// x[0..k) → int8 codes per group of <paramref name="group"/> (scale = max|x|/127, round to
    /// nearest), zero-padded to kpad; xs = each group's scale, xsum = scale · Σ codes (both zero up to groupStride).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeRow(float* x, int k, int kpad, int group, int groupStride, sbyte* q, float* xs, float* xsum)
    {
        for (int g = kpad / group; g < groupStride; g++) xs[g] = xsum[g] = 0f;
        for (int g0 = 0, gi = 0; g0 < kpad; g0 += group, gi++)
        {
            int end = Math.Min(k, g0 + group);
            float amax = 0;
            for (int i = g0; i < end; i++) amax = MathF.Max(amax, MathF.Abs(x[i]));
            float d = amax / 127f, id = amax > 0 ? 127f / amax : 0f;
            int sum = 0;
            for (int i = g0; i < g0 + group; i++)
            {
                int v = i < end ? (int)MathF.Round(x[i] * id) : 0;
                q[i] = (sbyte)v;
                sum += v;
            }

            xs[gi] = d;
            xsum[gi] = d * sum;
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
    private static void LinearDecoded(CpuThreadPool pool, ScratchBuffer scratch, float* x, int m, QuantLinearWeight w, float* bias, float* y)
    {
        int k = w.InFeatures;
        long xFloats = ((long)m * k + 15) & ~15L;
        long widenFloats = (long)CpuGemm<S, V>.KBlock * PackedLinearWeight.PanelWidth;
        using var lease = scratch.Rent((xFloats + pool.ThreadCount * widenFloats) * sizeof(float));
        var packed = (float*)lease.Data;
        int blocks = 0;
        for (int r = 0; r < m; r += CpuGemm<S, V>.BlockRows(m - r)) blocks++;
        var pack = new CpuGemm<S, V>.PackJob { Src = x, Dst = packed, M = m, K = k };
        pool.For(blocks, &CpuGemm<S, V>.PackItem, &pack);
        foreach (var seg in w.Segments)
        {
            var l = seg.Layout;
            var job = new Job { L = l, X = packed, Y = y, Bias = bias, Widen = packed + xFloats, YStride = w.OutFeatures, M = m };
            int panels = (l.Rows + 31) / 32;
            int items = Math.Min(panels, pool.ThreadCount == 1 ? 1 : pool.ThreadCount * ItemsPerThread);
            job.PanelsPerItem = (panels + items - 1) / items;
            items = (panels + job.PanelsPerItem - 1) / job.PanelsPerItem;
            pool.For(items, &PanelItem, &job);
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
