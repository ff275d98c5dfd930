using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// The int8 dot products on ARM64: sdot (AdvSimd.Arm64 dot product, ARMv8.2+) where the CPU has it,
/// otherwise widening multiplies and pairwise widening adds. 4-bit codes (0..15) are valid signed
/// bytes, so both formats use the signed × signed form.
/// </summary>
internal unsafe partial struct NeonSimd
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> DotI8x64(sbyte* w, sbyte* x, float* c, bool g16, Vector128<float> acc)
    {
        for (int i = 0; i < 4; i++)
        {
            var d = Dot16(AdvSimd.LoadVector128(w + 16 * i), AdvSimd.LoadVector128(x + 16 * i));
            acc = AdvSimd.FusedMultiplyAdd(acc, AdvSimd.ConvertToSingle(d), Vector128.Create(c[g16 ? i : i >> 1]));
        }

        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> DotU4x64(byte* w, sbyte* x, float* c, Vector128<float> acc)
    {
        var mask = Vector128.Create((byte)0x0F);
        var b0 = AdvSimd.LoadVector128(w);
        var b1 = AdvSimd.LoadVector128(w + 16);
        var lo = AdvSimd.Add(Dot16(AdvSimd.And(b0, mask).AsSByte(), AdvSimd.LoadVector128(x)),
            Dot16(AdvSimd.And(b1, mask).AsSByte(), AdvSimd.LoadVector128(x + 16)));
        var hi = AdvSimd.Add(Dot16(AdvSimd.ShiftRightLogical(b0, 4).AsSByte(), AdvSimd.LoadVector128(x + 32)),
            Dot16(AdvSimd.ShiftRightLogical(b1, 4).AsSByte(), AdvSimd.LoadVector128(x + 48)));
        acc = AdvSimd.FusedMultiplyAdd(acc, AdvSimd.ConvertToSingle(lo), Vector128.Create(c[0]));
        return AdvSimd.FusedMultiplyAdd(acc, AdvSimd.ConvertToSingle(hi), Vector128.Create(c[1]));
    }

    /// <summary>16 signed byte products summed into 4 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot16(Vector128<sbyte> a, Vector128<sbyte> b)
    {
        if (Dp.IsSupported) return Dp.DotProduct(Vector128<int>.Zero, a, b);
        var lo = AdvSimd.MultiplyWideningLower(a.GetLower(), b.GetLower());
        var hi = AdvSimd.MultiplyWideningUpper(a, b);
        return AdvSimd.AddPairwiseWideningAndAdd(AdvSimd.AddPairwiseWidening(lo), hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadI8(sbyte* p)
    {
        var s = AdvSimd.SignExtendWideningLower(AdvSimd.LoadVector64(p));
        return AdvSimd.ConvertToSingle(AdvSimd.SignExtendWideningLower(s.GetLower()));
    }
}
