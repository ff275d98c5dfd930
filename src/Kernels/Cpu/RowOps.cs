using System.Runtime.CompilerServices;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu;

/// <summary>Spreads row-wise elementwise ops over the pool once they are big enough to pay for it.</summary>
internal static unsafe class RowOps
{
    // Below this many elements a dispatch costs more than the work (~16K floats ≈ 1-2 µs).
    private const long ParallelThreshold = 1 << 15;

    public enum Op
    {
        RmsNorm,
        AddRmsNorm,
        SiluMul,
        Rope,
    }

    public struct Job
    {
        public Op Kind;
        public int Rows;
        public int Cols;
        public int RowsPerItem;

        // RmsNorm: A=x, C=out, W=weight. AddRmsNorm: A=x, B=residual, C=out. SiluMul: A=gateUp, C=out (Cols = F).
        public float* A;
        public float* B;
        public float* C;
        public float* W;
        public float Eps;

        // Rope: A=x (Cols = heads*headDim), W=cos/sin table rows (see RopeTable).
        public int HeadDim;
        public int Half;
        public int* Positions;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<S, V>(CpuThreadPool pool, ref Job job)
        where S : struct, ISimd<V>
        where V : unmanaged
    {
        if (job.Rows == 0) return;
        long work = (long)job.Rows * Math.Max(1, job.Cols);
        int items = work < ParallelThreshold ? 1 : Math.Min(job.Rows, pool.ThreadCount * 4);
        job.RowsPerItem = (job.Rows + items - 1) / items;
        items = (job.Rows + job.RowsPerItem - 1) / job.RowsPerItem;
        fixed (Job* j = &job)
        {
            if (items == 1) Item<S, V>(j, 0, 0);
            else pool.For(items, &Item<S, V>, j);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Item<S, V>(void* ctx, int item, int thread)
        where S : struct, ISimd<V>
        where V : unmanaged
    {
        var j = (Job*)ctx;
        int r0 = item * j->RowsPerItem;
        int r1 = Math.Min(j->Rows, r0 + j->RowsPerItem);
        int n = j->Cols;
        switch (j->Kind)
        {
            case Op.RmsNorm:
                for (int r = r0; r < r1; r++)
                    ElementwiseKernels<S, V>.RmsNormRow(j->A + (long)r * n, j->W, j->Eps, j->C + (long)r * n, n);
                break;
            case Op.AddRmsNorm:
                for (int r = r0; r < r1; r++)
                    ElementwiseKernels<S, V>.AddRmsNormRow(j->A + (long)r * n, j->B + (long)r * n, j->W, j->Eps, j->C + (long)r * n, n);
                break;
            case Op.SiluMul:
                for (int r = r0; r < r1; r++)
                {
                    float* g = j->A + (long)r * 2 * n;
                    ElementwiseKernels<S, V>.SiluMulRow(g, g + n, j->C + (long)r * n, n);
                }

                break;
            case Op.Rope:
                RopeRows<S, V>(j, r0, r1);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RopeRows<S, V>(Job* j, int r0, int r1)
        where S : struct, ISimd<V>
        where V : unmanaged
    {
        int half = j->Half;
        if (half == 0) return;
        int heads = j->Cols / j->HeadDim;
        for (int r = r0; r < r1; r++)
        {
            float* cs = j->W + (long)j->Positions[r] * 2 * half;
            float* row = j->A + (long)r * j->Cols;
            for (int h = 0; h < heads; h++) ElementwiseKernels<S, V>.RopeHead(row + (long)h * j->HeadDim, cs, cs + half, half);
        }
    }
}
