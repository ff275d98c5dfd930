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
/// Fewer rows than <see cref="ISimd{V}.QuantDecodeMinRows"/> (decode, batches, short prefill chunks;
/// 256 on x86, 16 elsewhere): int8 dot products per weight group over 32-row panels,
/// Σ_groups w_scale·x_scale·(int8 dot − offset·Σx_q), the integer parts exact in int32, one lane a row
/// (<see cref="ISimd{V}.DotI8Panel"/>, <see cref="ISimd{V}.DotU4Panel"/>). The K-quants keep their
/// byte sub-scales and mins as integers until each 256-block's end, as ggml's vec_dot does
/// (<see cref="ISimd{V}.DotQ4KPanel"/>, <see cref="ISimd{V}.DotQ6KPanel"/>): widening every group's
/// scale to a float first made Q4_K's GEMV compute-bound.
/// </para>
/// <para>
/// More rows (long prefill chunks): compute-bound, so 32-row panels of W are decoded to fp32 one
/// K block at a time (L1-sized) and the fp32 micro-kernels of <see cref="CpuGemm{S,V}"/> multiply them
/// by the rounded activations, amortising the decode over every row.
/// </para>
/// </summary>
internal static unsafe class QuantGemm<S, V>
    where S : struct, ISimd<V>
    where V : unmanaged
{
    private const int Panel = QuantSegment.PanelRows;
    private const int DecodedItemsPerThread = 64;

    private struct Job
    {
        public QuantLayout L;
        public float* X;
        public sbyte* Xq;
        public float* Xs;
        public int* Qsum;
        public float* Y;
        public float* Bias;
        public float* Widen;

        /// <summary>Per thread, <see cref="ExpandStride"/> floats for a panel's group scales (and mins) widened to fp32.</summary>
        public float* Expand;

        public long ExpandStride;
        public long YStride;
        public int M;
        public int XsStride;
        public int PanelsPerItem;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Linear(CpuThreadPool pool, ScratchBuffer scratch, float* x, int m, QuantLinearWeight w, float* bias, float* y)
    {
        if (m == 0 || w.OutFeatures == 0) return;
        int k = w.InFeatures, n = w.OutFeatures;
        bool decoded = m >= S.QuantDecodeMinRows;

        // Activation codes per row (K bytes), per-group scales and sums; for the decoded path also the
        // rounded activations packed for the fp32 micro-kernels, and one L1-sized K block of a W panel per thread.
        int xsStride = (w.Segments.Max(s => s.Layout.Groups) + 15) & ~15;
        long codeBytes = ((long)m * k + 63) & ~63L, scaleBytes = 2L * m * xsStride * sizeof(float);
        long xFloats = decoded ? ((long)m * k + 15) & ~15L : 0;
        long widenFloats = decoded ? (long)pool.ThreadCount * CpuGemm<S, V>.KBlock * Panel : 0;
        long expandStride = 2L * w.Segments.Max(s => s.Layout.Groups) * Panel;
        using var lease = scratch.Rent(codeBytes + scaleBytes + 2 * xFloats * sizeof(float) + widenFloats * sizeof(float)
            + pool.ThreadCount * expandStride * sizeof(float) + 64);
        var xq = (sbyte*)lease.Data;
        var xs = (float*)(lease.Data + codeBytes);
        var qsum = (int*)(xs + (long)m * xsStride);
        var rounded = (float*)(qsum + (long)m * xsStride);
        var packed = rounded + xFloats;
        var widen = packed + xFloats;
        var expand = widen + widenFloats;
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
                    X = x, K = k, GroupStride = xsStride, Scheme = scheme, Group = l.Group,
                    Xq = xq, Xs = xs, Qsum = qsum, Rounded = decoded ? rounded : null,
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
                L = l, X = packed, Xq = xq, Xs = xs, Qsum = qsum, Y = y, Bias = bias, Widen = widen, YStride = n, M = m,
                Expand = expand, ExpandStride = expandStride,
                XsStride = xsStride,
            };
            // Decoded path: an item is a panel's whole M×K product, so one panel an item splits small
            // layers evenly (18 panels of a 576-row projection go 9:9, not 5:4 over 9 two-panel items).
            // The int8 path's panels are ~1 µs each at decode: one contiguous share a thread (18 panels
            // go 9:9) measured ~12% faster single-stream decode than 8 claimed items a thread, whose
            // 2-panel items split 18 panels 10:8 and whose claims contend on one cache line.
            int items = Math.Min(l.Panels, pool.ThreadCount == 1 ? 1 : (decoded ? pool.ThreadCount * DecodedItemsPerThread : pool.ThreadCount));
            job.PanelsPerItem = (l.Panels + items - 1) / items;
            items = (l.Panels + job.PanelsPerItem - 1) / job.PanelsPerItem;
            pool.For(items, decoded ? &PanelItem : &DotItem, &job);
        }
    }

    private struct QuantizeJob
    {
        public float* X;
        public sbyte* Xq;
        public float* Xs;
        public int* Qsum;
        public float* Rounded;
        public int K;
        public int GroupStride;
        public int Group;
        public ActivationQuant.Scheme Scheme;
    }

    private static void QuantizeItem(void* ctx, int r, int thread)
    {
        var j = (QuantizeJob*)ctx;
        float* x = j->X + (long)r * j->K;
        sbyte* q = j->Xq + (long)r * j->K;
        float* xs = j->Xs + (long)r * j->GroupStride;
        ActivationQuant.Row(x, j->K, j->K, j->Scheme, j->Group, j->GroupStride, q, xs, j->Qsum + (long)r * j->GroupStride);
        if (j->Rounded != null) ActivationQuant.Dequantize(q, xs, j->K, j->Group, j->Rounded + (long)r * j->K);
    }

    /// <summary>Int8 path: each panel of 32 rows against every activation row, the panel staying in L1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotItem(void* ctx, int item, int thread)
    {
        var j = (Job*)ctx;
        ref var l = ref j->L;
        int p0 = item * j->PanelsPerItem, p1 = Math.Min(l.Panels, p0 + j->PanelsPerItem);
        float* acc = stackalloc float[Panel];
        for (int p = p0; p < p1; p++)
        {
            byte* codes = l.CodesOf(p);
            float* ws = null;
            if (!l.TwoLevel) GroupScales(ref l, p, j->Expand + thread * j->ExpandStride, out ws, out _);
            if (p + 1 < p1) PrefetchScales(ref l, p + 1);
            int n0 = p * Panel, cols = Math.Min(Panel, l.Rows - n0);
            for (int mi = 0; mi < j->M; mi++)
            {
                float* xs = j->Xs + (long)mi * j->XsStride;
                sbyte* xq = j->Xq + (long)mi * l.K;
                switch (l.Source)
                {
                    // K-quants: sub-scales and mins stay integers until each 256-block's end, as in ggml's vec_dot.
                    case DType.Q4_K:
                        S.DotQ4KPanel(codes, xq, l.Supers, l.SubScalesOf(p), l.SubMinsOf(p), l.ScalesOf(p), l.MinsOf(p), xs,
                            j->Qsum + (long)mi * j->XsStride, acc);
                        break;
                    case DType.Q6_K:
                        S.DotQ6KPanel(codes, xq, l.Supers, l.SubScalesOf(p), l.ScalesOf(p), xs, j->Qsum + (long)mi * j->XsStride, acc);
                        break;
                    case DType.Q4_0:
                        S.DotU4Panel(codes, xq, l.Groups, ws, xs, j->Qsum + (long)mi * j->XsStride, acc);
                        break;
                    default:
                        S.DotI8Panel((sbyte*)codes, xq, l.Groups, l.Group, ws, xs, acc);
                        break;
                }

                float* yr = j->Y + mi * j->YStride + l.Column + n0;
                float* bias = j->Bias != null ? j->Bias + l.Column + n0 : null;
                for (int r = 0; r < cols; r++) yr[r] = acc[r] + (bias != null ? bias[r] : 0f);
            }
        }
    }

    /// <summary>
    /// Decoded path: per panel, one L1-sized K block at a time is widened to fp32 and multiplied by
    /// every row of x before the next block (decoding the whole panel first put up to K×32 floats,
    /// 196 KB at K=1536, through L2 between the decode and the FMAs).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelItem(void* ctx, int item, int thread)
    {
        var j = (Job*)ctx;
        ref var l = ref j->L;
        int m = j->M, k = l.K;
        int p0 = item * j->PanelsPerItem, p1 = Math.Min(l.Panels, p0 + j->PanelsPerItem);
        float* block = j->Widen + (long)thread * CpuGemm<S, V>.KBlock * Panel;
        float* acc = stackalloc float[CpuGemm<S, V>.MaxRowBlock * PackedLinearWeight.PanelWidth];
        for (int p = p0; p < p1; p++)
        {
            int n0 = p * Panel, cols = Math.Min(Panel, l.Rows - n0);
            float* bias = j->Bias != null ? j->Bias + l.Column + n0 : null;
            GroupScales(ref l, p, j->Expand + thread * j->ExpandStride, out float* ws, out float* wm);
            for (int k0 = 0; k0 < k; k0 += CpuGemm<S, V>.KBlock)
            {
                int kn = Math.Min(CpuGemm<S, V>.KBlock, k - k0);
                DecodeBlock(ref l, p, ws, wm, k0, kn, block);
                for (int r = 0; r < m;)
                {
                    int rows = CpuGemm<S, V>.BlockRows(m - r);
                    CpuGemm<S, V>.RunRows<F32Panel>(rows, j->X + (long)r * k + (long)k0 * rows, (byte*)block, kn, acc, prefetch: false);
                    GemmKernels<S, V>.Epilogue(acc, rows, j->Y + r * j->YStride + l.Column + n0, (nint)j->YStride, cols, bias, accumulate: k0 > 0);
                    r += rows;
                }
            }
        }
    }

    /// <summary>
    /// The next panel's scale arrays, read whole at its start, are brought in while this panel's
    /// codes stream (the code stream has its own prefetch inside the dot products).
    /// </summary>
    private static void PrefetchScales(ref QuantLayout l, int p)
    {
        if (!l.TwoLevel)
        {
            Prefetch(l.HalfScalesOf(p), (long)l.Groups * Panel * sizeof(ushort));
            return;
        }

        Prefetch(l.SubScalesOf(p), (long)l.Groups * Panel);
        Prefetch(l.ScalesOf(p), (long)l.Supers * Panel * sizeof(float));
        if (l.SubMins == null) return;
        Prefetch(l.SubMinsOf(p), (long)l.Groups * Panel);
        Prefetch(l.MinsOf(p), (long)l.Supers * Panel * sizeof(float));
    }

    private static void Prefetch(void* p, long bytes)
    {
        for (long o = 0; o < bytes; o += 64) S.Prefetch((byte*)p + o);
    }

    /// <summary>
    /// Panel p's per-group scales (and mins) as floats [group][32 rows] in <paramref name="buffer"/>
    /// (Groups·32 floats each): Q8_0's and Q4_0's fp16 d widened, the K-quants' d·sc and dmin·m, the
    /// products llama.cpp's dequantization forms.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupScales(ref QuantLayout l, int p, float* buffer, out float* ws, out float* wm)
    {
        ws = buffer;
        if (!l.TwoLevel)
        {
            wm = null;
            ushort* h = l.HalfScalesOf(p);
            for (int g = 0; g < l.Groups; g++) S.WidenHalfScales(h + g * Panel, ws + g * Panel);
            return;
        }

        wm = l.SubMins != null ? buffer + (long)l.Groups * Panel : null;
        int per = l.Groups / l.Supers;
        sbyte* sc = l.SubScalesOf(p), sm = l.SubMinsOf(p);
        float* d = l.ScalesOf(p), dm = l.MinsOf(p);
        for (int g = 0; g < l.Groups; g++)
        {
            int sb = g / per * Panel;
            S.WidenScales(sc + g * Panel, d + sb, ws + g * Panel);
            if (wm != null) S.WidenScales(sm + g * Panel, dm + sb, wm + g * Panel);
        }
    }

    /// <summary>
    /// k in [k0, k0+kn) of panel p decoded to fp32, K-major [kn][32] (value = scale·code − min;
    /// padded rows decode to zero). k0 and kn are multiples of 32, so blocks hold whole groups.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeBlock(ref QuantLayout l, int p, float* ws, float* wm, int k0, int kn, float* dst)
    {
        byte* codes = l.CodesOf(p);
        if (l.Codes == QuantCodes.U6)
        {
            // Each 16-k group widened to the I8 layout first: the decode is amortised over every row of x.
            sbyte* i8 = stackalloc sbyte[512];
            for (int k = k0; k < k0 + kn; k += 16)
            {
                PanelDecode.U6Group(codes + (k / 16) * 384, i8);
                for (int t = 0; t < 4; t++)
                    S.DecodeI8Step(i8 + 128 * t, ws + (k / 16) * Panel, dst + (long)(k + 4 * t - k0) * Panel);
            }

            return;
        }

        if (l.Codes == QuantCodes.I8)
        {
            for (int k = k0; k < k0 + kn; k += 4)
                S.DecodeI8Step((sbyte*)codes + (k / 4) * 128, ws + (k / l.Group) * Panel, dst + (long)(k - k0) * Panel);
            return;
        }

        float* eight = stackalloc float[Panel];
        for (int g = k0 / 32; g < (k0 + kn) / 32; g++)
        {
            float* s = ws + g * Panel, m = wm != null ? wm + g * Panel : eight;
            if (wm == null)
                for (int r = 0; r < Panel; r += S.Lanes) S.Store(S.Mul(S.Load(s + r), S.Splat(8f)), eight + r); // Q4_0: min = 8·scale
            for (int k = g * 32; k < g * 32 + 32; k += 8)
                S.DecodeU4Step(codes + (k / 8) * 128, s, m, dst + (long)(k - k0) * Panel);
        }
    }
}
