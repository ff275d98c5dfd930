using System.Numerics;
using System.Runtime.CompilerServices;

namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// dst[i] = d[i mod 32] · src[i]: a K-quant panel's byte sub-scales times their 256-block's float
/// scale, per row of the 32-row panel. Vector&lt;T&gt; follows the runtime's ISA knobs (512, 256 or
/// 128 bits, or scalar when vectors are not accelerated), so every leg runs a path of its own width.
/// </summary>
internal static unsafe class ScaleExpand
{
    private const int Rows = QuantSegment.PanelRows;

    /// <param name="n">A multiple of 64 (two groups of 32 rows), so any vector width divides it.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(sbyte* src, float* d, float* dst, int n)
    {
        int lanes = Vector<int>.Count;
        if (Vector.IsHardwareAccelerated && Rows % lanes == 0 && n % Vector<sbyte>.Count == 0)
        {
            for (int i = 0; i < n; i += Vector<sbyte>.Count)
            {
                Vector.Widen(Vector.Load(src + i), out Vector<short> s0, out Vector<short> s1);
                Vector.Widen(s0, out Vector<int> i0, out Vector<int> i1);
                Vector.Widen(s1, out Vector<int> i2, out Vector<int> i3);
                Store(i0, d, dst, i);
                Store(i1, d, dst, i + lanes);
                Store(i2, d, dst, i + 2 * lanes);
                Store(i3, d, dst, i + 3 * lanes);
            }

            return;
        }

        for (int i = 0; i < n; i++) dst[i] = d[i % Rows] * src[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector<int> v, float* d, float* dst, int i) =>
        Vector.Store(Vector.ConvertToSingle(v) * Vector.Load(d + i % Rows), dst + i);
}
