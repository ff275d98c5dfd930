using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// The int8 dot products at 256 bits: AVX-VNNI's vpdpbusd where the CPU has it (Alder Lake and
/// later), otherwise AVX2's vpmaddubsw + vpmaddwd; vpsignb moves w's sign onto x so |w| can be
/// the unsigned operand.
/// </summary>
internal unsafe partial struct Avx2Simd
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> DotI8x64(sbyte* w, sbyte* x, float* c, bool g16, Vector256<float> acc)
    {
        var w0 = Avx.LoadVector256(w);
        var w1 = Avx.LoadVector256(w + 32);
        var d0 = Sums(Avx2.Abs(w0), Avx2.Sign(Avx.LoadVector256(x), w0));
        var d1 = Sums(Avx2.Abs(w1), Avx2.Sign(Avx.LoadVector256(x + 32), w1));
        if (g16)
        {
            acc = Fma.MultiplyAdd(d0, Vector256.Create(Vector128.Create(c[0]), Vector128.Create(c[1])), acc);
            return Fma.MultiplyAdd(d1, Vector256.Create(Vector128.Create(c[2]), Vector128.Create(c[3])), acc);
        }

        acc = Fma.MultiplyAdd(d0, Vector256.Create(c[0]), acc);
        return Fma.MultiplyAdd(d1, Vector256.Create(c[1]), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> DotU4x64(byte* w, sbyte* x, float* c, Vector256<float> acc)
    {
        var b = Avx.LoadVector256(w);
        var mask = Vector256.Create((byte)0x0F);
        var d0 = Sums(Avx2.And(b, mask), Avx.LoadVector256(x));
        var d1 = Sums(Avx2.And(Avx2.ShiftRightLogical(b.AsUInt16(), 4).AsByte(), mask), Avx.LoadVector256(x + 32));
        acc = Fma.MultiplyAdd(d0, Vector256.Create(c[0]), acc);
        return Fma.MultiplyAdd(d1, Vector256.Create(c[1]), acc);
    }

    /// <summary>32 unsigned × signed byte products in 8 int32 lanes of 4 consecutive products each, as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Sums(Vector256<byte> u, Vector256<sbyte> s)
    {
        if (AvxVnni.IsSupported) return Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s));
        return Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadI8(sbyte* p) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(p));
}
