using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// The int8 dot products on ARM64, 4 panel rows a register: sdot (AdvSimd.Arm64 dot product,
/// ARMv8.2+) where the CPU has it, otherwise widening multiplies and pairwise adds. 4-bit codes
/// (0..15) are valid signed bytes, so both formats use the signed × signed form.
/// </summary>
internal unsafe partial struct NeonSimd
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotI8Panel(sbyte* w, sbyte* x, int groups, int group, float* ws, float* xs, float* acc)
    {
        var a = stackalloc Vector128<int>[8];
        for (int i = 0; i < 8; i++) AdvSimd.Store(acc + 4 * i, Vector128<float>.Zero);
        for (int g = 0; g < groups; g++, ws += 32, x += group, w += 32 * group)
        {
            GroupI8(w, x, group, a);
            Flush(a, ws, xs[g], acc);
        }
    }

    /// <summary>Q6_K with integer sub-scales (see <see cref="ISimd{V}.DotQ6KPanel"/>): each group widened to signed bytes (<see cref="PanelDecode.U6Group"/>), then the I8 group sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ6KPanel(byte* w, sbyte* x, int supers, sbyte* sc, float* d, float* xd, int* qsum, float* acc)
    {
        var a = stackalloc Vector128<int>[8];
        var s = stackalloc Vector128<int>[8];
        var codes = stackalloc sbyte[512];
        for (int i = 0; i < 8; i++) AdvSimd.Store(acc + 4 * i, Vector128<float>.Zero);
        for (int b = 0; b < supers; b++, d += 32)
        {
            for (int i = 0; i < 8; i++) s[i] = Vector128<int>.Zero;
            for (int g = 0; g < 16; g++, sc += 32, x += 16, w += 384)
            {
                PanelDecode.U6Group(w, codes);
                GroupI8(codes, x, 16, a);
                PanelDecode.ScaleGroup128(a, sc, s);
            }

            PanelDecode.FlushBlock128(s, d, xd[16 * b], acc);
        }
    }

    /// <summary>a[i] = one group's exact int32 sums for rows 4i..4i+3 of an I8 panel (32·group bytes from w).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupI8(sbyte* w, sbyte* x, int group, Vector128<int>* a)
    {
        for (int i = 0; i < 8; i++) a[i] = Vector128<int>.Zero;
        for (int k = 0; k < group; k += 4, w += 128)
        {
            var xb = Vector128.Create(*(int*)(x + k)).AsSByte();
            for (int i = 0; i < 8; i++) a[i] = Dot4(a[i], AdvSimd.LoadVector128(w + 16 * i), xb);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotU4Panel(byte* w, sbyte* x, int groups, float* ws, float* xs, int* qsum, float* acc)
    {
        var a = stackalloc Vector128<int>[8];
        var mask = Vector128.Create((byte)0x0F);
        for (int i = 0; i < 8; i++) AdvSimd.Store(acc + 4 * i, Vector128<float>.Zero);
        for (int g = 0; g < groups; g++, ws += 32, x += 32, w += 512)
        {
            GroupU4(w, x, mask, a);
            var eight = Vector128.Create(8 * qsum[g]);
            for (int i = 0; i < 8; i++) a[i] -= eight;
            Flush(a, ws, xs[g], acc);
        }
    }

    /// <summary>Q4_K with integer sub-scales (see <see cref="ISimd{V}.DotQ4KPanel"/>): sdot group sums, then <see cref="PanelDecode.ScaleGroup128"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ4KPanel(byte* w, sbyte* x, int supers, sbyte* sc, sbyte* m, float* d, float* dmin, float* xd, int* qsum, float* acc)
    {
        var a = stackalloc Vector128<int>[8];
        var s = stackalloc Vector128<int>[8];
        var mask = Vector128.Create((byte)0x0F);
        for (int i = 0; i < 8; i++) AdvSimd.Store(acc + 4 * i, Vector128<float>.Zero);
        for (int b = 0; b < supers; b++, d += 32, dmin += 32, m += 256)
        {
            for (int i = 0; i < 8; i++) s[i] = Vector128<int>.Zero;
            for (int g = 0; g < 8; g++, sc += 32, x += 32, w += 512)
            {
                GroupU4(w, x, mask, a);
                PanelDecode.ScaleGroup128(a, sc, s);
            }

            PanelDecode.FlushBlock128(s, d, xd[8 * b], acc);
            PanelDecode.FlushMins128(m, qsum + 8 * b, dmin, xd[8 * b], acc);
        }
    }

    /// <summary>a[i] = one 32-k group's exact int32 sums for rows 4i..4i+3 of a U4 panel (512 bytes from w).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupU4(byte* w, sbyte* x, Vector128<byte> mask, Vector128<int>* a)
    {
        for (int i = 0; i < 8; i++) a[i] = Vector128<int>.Zero;
        for (int k = 0; k < 32; k += 8, w += 128)
        {
            var xl = Vector128.Create(*(int*)(x + k)).AsSByte();
            var xh = Vector128.Create(*(int*)(x + k + 4)).AsSByte();
            for (int i = 0; i < 8; i++)
            {
                var b = AdvSimd.LoadVector128(w + 16 * i);
                a[i] = Dot4(Dot4(a[i], AdvSimd.And(b, mask).AsSByte(), xl), AdvSimd.ShiftRightLogical(b, 4).AsSByte(), xh);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Flush(Vector128<int>* a, float* ws, float xs, float* acc)
    {
        var xg = Vector128.Create(xs);
        for (int i = 0; i < 8; i++)
        {
            var s = AdvSimd.Multiply(AdvSimd.LoadVector128(ws + 4 * i), xg);
            AdvSimd.Store(acc + 4 * i, AdvSimd.FusedMultiplyAdd(AdvSimd.LoadVector128(acc + 4 * i), AdvSimd.ConvertToSingle(a[i]), s));
        }
    }

    /// <summary>acc + the sums of 4 consecutive signed byte products (one row's 4 codes × x's 4 bytes), one int32 lane each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot4(Vector128<int> acc, Vector128<sbyte> w, Vector128<sbyte> x)
    {
        if (Dp.IsSupported) return Dp.DotProduct(acc, w, x);
        var lo = AdvSimd.MultiplyWideningLower(w.GetLower(), x.GetLower());
        var hi = AdvSimd.MultiplyWideningUpper(w, x);
        // Pairs fit int16 (≤ 2·128·127); the second pairwise add widens to one int32 per 4 products.
        return AdvSimd.Add(acc, AdvSimd.AddPairwiseWidening(AdvSimd.Arm64.AddPairwise(lo, hi)));
    }

    public static void DecodeI8Step(sbyte* q, float* s, float* dst) => PanelDecode.I8Step(q, s, dst);

    public static void DecodeU4Step(byte* q, float* s, float* m, float* dst) => PanelDecode.U4Step(q, s, m, dst);

    public static void WidenScales(sbyte* sc, float* d, float* dst) => PanelDecode.WidenScales128(sc, d, dst);

    public static void WidenHalfScales(ushort* h, float* dst) => PanelDecode.WidenHalfScales128(h, dst);
}
