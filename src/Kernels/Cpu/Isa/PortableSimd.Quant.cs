using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>The int8 dot products with the cross-platform Vector128 API only: widen to int16, multiply, widen-add to int32.</summary>
internal unsafe partial struct PortableSimd
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> DotI8x64(sbyte* w, sbyte* x, float* c, bool g16, Vector128<float> acc)
    {
        for (int i = 0; i < 4; i++)
        {
            var d = Dot16(Vector128.Load(w + 16 * i), Vector128.Load(x + 16 * i));
            acc = Vector128.MultiplyAddEstimate(Vector128.ConvertToSingle(d), Vector128.Create(c[g16 ? i : i >> 1]), acc);
        }

        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> DotU4x64(byte* w, sbyte* x, float* c, Vector128<float> acc)
    {
        var mask = Vector128.Create((byte)0x0F);
        var b0 = Vector128.Load(w);
        var b1 = Vector128.Load(w + 16);
        var lo = Dot16((b0 & mask).AsSByte(), Vector128.Load(x)) + Dot16((b1 & mask).AsSByte(), Vector128.Load(x + 16));
        var hi = Dot16(Vector128.ShiftRightLogical(b0, 4).AsSByte(), Vector128.Load(x + 32))
            + Dot16(Vector128.ShiftRightLogical(b1, 4).AsSByte(), Vector128.Load(x + 48));
        acc = Vector128.MultiplyAddEstimate(Vector128.ConvertToSingle(lo), Vector128.Create(c[0]), acc);
        return Vector128.MultiplyAddEstimate(Vector128.ConvertToSingle(hi), Vector128.Create(c[1]), acc);
    }

    /// <summary>16 signed byte products summed into 4 int32 lanes (|product| ≤ 16,256 fits int16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot16(Vector128<sbyte> a, Vector128<sbyte> b)
    {
        var lo = Vector128.WidenLower(a) * Vector128.WidenLower(b);
        var hi = Vector128.WidenUpper(a) * Vector128.WidenUpper(b);
        return Vector128.WidenLower(lo) + Vector128.WidenUpper(lo) + Vector128.WidenLower(hi) + Vector128.WidenUpper(hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadI8(sbyte* p) =>
        Vector128.ConvertToSingle(Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(*(int*)p).AsSByte())));
}
