namespace Loom.Kernels.Cpu;

/// <summary>
/// y[M,N] = x[M,K]·Wᵀ over packed panels. Work items are runs of whole panels, so each thread
/// streams a contiguous stretch of W; inside a panel every row block reuses it from cache, which
/// means W crosses the memory bus once whatever M is.
/// </summary>
internal static unsafe class CpuGemm
{
    private const int MaxRowBlock = 12;

    // More items than threads lets fast threads take over the tail; per-item cost is one CAS.
    private const int ItemsPerThread = 16;

    private struct GemmJob
    {
        public float* X;
        public float* Y;
        public float* Bias;
        public byte* W;
        public long PanelBytes;
        public int M;
        public int K;
        public int N;
        public int Panels;
        public int PanelsPerItem;
        public int Blocks;
        public bool Bf16;
    }

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

        using var lease = scratch.Rent((long)m * k * sizeof(float));
        job.X = (float*)lease.Data;
        int blocks = 0;
        for (int r = 0; r < m; r += BlockRows(m - r)) blocks++;
        job.Blocks = blocks;
        var pack = new PackJob { Src = x, Dst = job.X, M = m, K = k };
        pool.For(blocks, &PackItem, &pack);
        pool.For(items, &PanelItem, &job);
    }

    /// <summary>Row-block sizes the micro-kernels exist for, largest first.</summary>
    private static int BlockRows(int remaining) =>
        remaining >= 12 ? 12 : remaining >= 8 ? 8 : remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1;

    private struct PackJob
    {
        public float* Src;
        public float* Dst;
        public int M;
        public int K;
    }

    /// <summary>Transposes row block <paramref name="block"/> into [K][rows] at offset r0*K.</summary>
    private static void PackItem(void* ctx, int block, int thread)
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
        for (int r = 0; r < rows; r++)
        {
            float* s = src + (long)r * k;
            float* d = dst + r;
            for (int kk = 0; kk < k; kk++) d[(long)kk * rows] = s[kk];
        }
    }

    private static void PanelItem(void* ctx, int item, int thread)
    {
        var j = (GemmJob*)ctx;
        int p0 = item * j->PanelsPerItem;
        int p1 = Math.Min(j->Panels, p0 + j->PanelsPerItem);
        if (j->Bf16) RunPanels<Bf16Panel>(j, p0, p1);
        else RunPanels<F32Panel>(j, p0, p1);
    }

    private static void RunPanels<TP>(GemmJob* j, int p0, int p1)
        where TP : struct, IPanelFormat
    {
        int m = j->M, k = j->K, n = j->N;
        float* acc = stackalloc float[MaxRowBlock * PackedLinearWeight.PanelWidth];
        for (int p = p0; p < p1; p++)
        {
            byte* w = j->W + p * j->PanelBytes;
            int n0 = p * PackedLinearWeight.PanelWidth;
            int cols = Math.Min(PackedLinearWeight.PanelWidth, n - n0);
            float* bias = j->Bias != null ? j->Bias + n0 : null;
            int r = 0;
            while (r < m)
            {
                float* xb = j->X + (long)r * k;
                float* yb = j->Y + (long)r * n + n0;
                int rows = BlockRows(m - r);
                switch (rows)
                {
                    case 12: GemmKernels.Kernel<TP, Rows12>(xb, w, k, acc); break;
                    case 8: GemmKernels.Kernel<TP, Rows8>(xb, w, k, acc); break;
                    case 4: GemmKernels.Kernel<TP, Rows4>(xb, w, k, acc); break;
                    case 2: GemmKernels.Kernel<TP, Rows2>(xb, w, k, acc); break;
                    default: GemmKernels.Kernel1<TP>(xb, w, k, acc); break;
                }

                GemmKernels.Epilogue(acc, rows, yb, n, cols, bias);
                r += rows;
            }
        }
    }
}
