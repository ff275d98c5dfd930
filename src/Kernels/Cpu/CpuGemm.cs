using System.Runtime.CompilerServices;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu;

/// <summary>
/// y[M,N] = x[M,K]·Wᵀ over packed panels. Work items are runs of whole panels, so each thread
/// streams a contiguous stretch of W; inside a panel every row block reuses it from cache, which
/// means W crosses the memory bus once whatever M is.
/// </summary>
/// <remarks>
/// Large M (prefill) is compute-bound, so there each panel is cut into K blocks that fit L1 beside
/// a row block of x, and bf16 blocks are widened to f32 once per block instead of once per row
/// block: the shift/mask would otherwise compete with the FMAs for the same two vector ports.
/// </remarks>
internal static unsafe class CpuGemm<S, V>
    where S : struct, ISimd<V>
    where V : unmanaged
{
    internal const int MaxRowBlock = 12;
    private const int PanelWidth = PackedLinearWeight.PanelWidth;

    // More items than threads lets fast threads take over the tail; per-item cost is one CAS.
    private const int ItemsPerThread = 16;

    // From this many rows the blocked path wins: widening once is amortised over ≥2 row blocks.
    private const int BlockedMinRows = 24;

    // f32 K block: 192×32×4 = 24 KB of W plus 12×192×4 = 9 KB of x stays inside a 32-48 KB L1.
    internal const int KBlock = 192;

    // Rows per L2 chunk (a multiple of 12, so chunk edges fall on row-block edges): 96×1536×4 B ≈ 0.6 MB.
    internal const int RowChunk = 96;

    private struct GemmJob
    {
        public float* X;
        public float* Y;
        public float* Bias;
        public byte* W;
        public float* Widen;
        public long PanelBytes;
        public int M;
        public int K;
        public int N;
        public int Panels;
        public int PanelsPerItem;
        public bool Bf16;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Linear(CpuThreadPool pool, ScratchBuffer scratch, float* x, int m, PackedLinearWeight w, float* bias, float* y)
    {
        if (m == 0 || w.OutFeatures == 0) return;
        int k = w.InFeatures;
        var job = new GemmJob
        {
            X = x,
            Y = y,
            Bias = bias,
            W = w.Data,
            PanelBytes = w.PanelBytes,
            M = m,
            K = k,
            N = w.OutFeatures,
            Panels = w.Panels,
            Bf16 = w.PanelDType == DType.BF16,
        };

        if (k == 0)
        {
            for (int r = 0; r < m; r++)
                for (int c = 0; c < job.N; c++) y[(long)r * job.N + c] = bias != null ? bias[c] : 0f;
            return;
        }

        int items = Math.Min(job.Panels, pool.ThreadCount == 1 ? 1 : pool.ThreadCount * ItemsPerThread);
        job.PanelsPerItem = (job.Panels + items - 1) / items;
        items = (job.Panels + job.PanelsPerItem - 1) / job.PanelsPerItem;

        if (m == 1)
        {
            // A single row is its own K-major packing.
            pool.For(items, &PanelItem, &job);
            return;
        }

        long xFloats = ((long)m * k + 15) & ~15L;
        long widenFloats = (long)KBlock * PanelWidth;
        using var lease = scratch.Rent((xFloats + pool.ThreadCount * widenFloats) * sizeof(float));
        job.X = (float*)lease.Data;
        job.Widen = job.X + xFloats;
        int blocks = 0;
        for (int r = 0; r < m; r += BlockRows(m - r)) blocks++;
        var pack = new PackJob { Src = x, Dst = job.X, M = m, K = k };
        pool.For(blocks, &PackItem, &pack);
        pool.For(items, &PanelItem, &job);
    }

    /// <summary>Row-block sizes the micro-kernels exist for, largest first, capped by the register file.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int BlockRows(int remaining) =>
        remaining >= S.MaxRows ? S.MaxRows : remaining >= 8 && S.MaxRows > 8 ? 8 : remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1;

    internal struct PackJob
    {
        public float* Src;
        public float* Dst;
        public int M;
        public int K;
    }

    /// <summary>Transposes row block <paramref name="block"/> into [K][rows] at offset r0*K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackItem(void* ctx, int block, int thread)
    {
        var j = (PackJob*)ctx;
        int r0 = 0, rows = 0;
        for (int b = 0; b <= block; b++)
        {
            r0 += rows;
            rows = BlockRows(j->M - r0);
        }

        int k = j->K;
        float* src = j->Src + (long)r0 * k;
        float* dst = j->Dst + (long)r0 * k;
        int k0 = rows == 12 ? S.Transpose12(src, k, dst) : 0;
        for (int r = 0; r < rows; r++)
        {
            float* s = src + (long)r * k;
            float* d = dst + r;
            for (int kk = k0; kk < k; kk++) d[(long)kk * rows] = s[kk];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelItem(void* ctx, int item, int thread)
    {
        var j = (GemmJob*)ctx;
        int p0 = item * j->PanelsPerItem;
        int p1 = Math.Min(j->Panels, p0 + j->PanelsPerItem);
        if (j->M >= BlockedMinRows) RunBlocked(j, p0, p1, j->Widen + (long)thread * KBlock * PanelWidth);
        else if (j->Bf16) RunPanels<Bf16Panel>(j, p0, p1);
        else RunPanels<F32Panel>(j, p0, p1);
    }

    /// <summary>Small M: the whole K per kernel call, bf16 widened in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunPanels<TP>(GemmJob* j, int p0, int p1)
        where TP : struct, IPanelFormat
    {
        int m = j->M, k = j->K, n = j->N;
        float* acc = stackalloc float[MaxRowBlock * PanelWidth];
        for (int p = p0; p < p1; p++)
        {
            byte* w = j->W + p * j->PanelBytes;
            int n0 = p * PanelWidth;
            int cols = Math.Min(PanelWidth, n - n0);
            float* bias = j->Bias != null ? j->Bias + n0 : null;
            for (int r = 0; r < m;)
            {
                int rows = BlockRows(m - r);
                RunRows<TP>(rows, j->X + (long)r * k, w, k, acc, prefetch: r == 0);
                GemmKernels<S, V>.Epilogue(acc, rows, j->Y + (long)r * n + n0, n, cols, bias, accumulate: false);
                r += rows;
            }
        }
    }

    /// <summary>
    /// Large M: rows in chunks whose packed x stays in L2 across the item's panels; per panel, K
    /// blocks of f32 (widened once if bf16) that stay in L1 across the chunk's row blocks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunBlocked(GemmJob* j, int p0, int p1, float* widen)
    {
        int m = j->M, k = j->K, n = j->N;
        float* acc = stackalloc float[MaxRowBlock * PanelWidth];
        for (int c0 = 0; c0 < m; c0 += RowChunk)
        {
            int c1 = Math.Min(m, c0 + RowChunk);
            for (int p = p0; p < p1; p++)
            {
                byte* w = j->W + p * j->PanelBytes;
                int n0 = p * PanelWidth;
                int cols = Math.Min(PanelWidth, n - n0);
                float* bias = j->Bias != null ? j->Bias + n0 : null;
                for (int k0 = 0; k0 < k; k0 += KBlock)
                {
                    int kn = Math.Min(KBlock, k - k0);
                    byte* wb;
                    if (j->Bf16)
                    {
                        GemmKernels<S, V>.WidenBf16(w + (long)k0 * 64, kn, widen);
                        wb = (byte*)widen;
                    }
                    else
                    {
                        wb = w + (long)k0 * 128;
                    }

                    for (int r = c0; r < c1;)
                    {
                        int rows = BlockRows(m - r);
                        RunRows<F32Panel>(rows, j->X + (long)r * k + (long)k0 * rows, wb, kn, acc, prefetch: false);
                        GemmKernels<S, V>.Epilogue(acc, rows, j->Y + (long)r * n + n0, n, cols, bias, accumulate: k0 > 0);
                        r += rows;
                    }
                }
            }
        }
    }

    /// <summary>One row block across the panel's lane groups (one group on AVX-512, two on AVX2, ...).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RunRows<TP>(int rows, float* x, byte* w, int k, float* acc, bool prefetch)
        where TP : struct, IPanelFormat
    {
        int groups = GemmKernels<S, V>.Groups, stride = S.Lanes * 4;
        if (rows == 1)
        {
            // A lone row takes two lane groups per pass, so an AVX2 panel streams once, not twice.
            if (groups == 1) GemmKernels<S, V>.Kernel1<TP, Rows1>(x, w, k, acc);
            else
                for (int g = 0; g < groups; g += 2) GemmKernels<S, V>.Kernel1<TP, Rows2>(x, w + g * stride, k, acc + g * S.Lanes);
            return;
        }

        for (int g = 0; g < groups; g++) RunBlock<TP>(rows, x, w + g * stride, k, acc + g * S.Lanes, prefetch && g == 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunBlock<TP>(int rows, float* x, byte* w, int k, float* acc, bool prefetch)
        where TP : struct, IPanelFormat
    {
        switch (rows)
        {
            case 12: GemmKernels<S, V>.Kernel<TP, Rows12>(x, w, k, acc, prefetch); break;
            case 8: GemmKernels<S, V>.Kernel<TP, Rows8>(x, w, k, acc, prefetch); break;
            case 6: GemmKernels<S, V>.Kernel<TP, Rows6>(x, w, k, acc, prefetch); break;
            case 4: GemmKernels<S, V>.Kernel<TP, Rows4>(x, w, k, acc, prefetch); break;
            case 2: GemmKernels<S, V>.Kernel<TP, Rows2>(x, w, k, acc, prefetch); break;
            default: GemmKernels<S, V>.Kernel<TP, Rows1>(x, w, k, acc, prefetch); break;
        }
    }
}
