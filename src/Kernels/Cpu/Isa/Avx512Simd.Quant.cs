using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// The int8 dot products at 512 bits: vpmaddubsw (unsigned × signed bytes, pairs to int16) then
/// vpmaddwd against ones (to int32, 4 products a lane). .NET 10 exposes no AVX512-VNNI (vpdpbusd):
/// AvxVnni is the VEX form, absent on Zen 4, so this is the same two-instruction sequence llama.cpp
/// uses without VNNI.
/// </summary>
internal unsafe partial struct Avx512Simd
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> DotI8x64(sbyte* w, sbyte* x, float* c, bool g16, Vector512<float> acc)
    {
        var wv = Vector512.Load(w);
        var xv = Vector512.Load(x);
        // Sign trick: |w| is unsigned, and x takes w's sign, so the product is unchanged.
        var sx = Vector512.ConditionalSelect(Vector512.LessThan(wv, Vector512<sbyte>.Zero), Vector512<sbyte>.Zero - xv, xv);
        return Scale(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(wv), sx), c, g16, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> DotU4x64(byte* w, sbyte* x, float* c, Vector512<float> acc)
    {
        var b = Vector256.Load(w);
        var mask = Vector256.Create((byte)0x0F);
        var u = Vector512.Create(b & mask, Vector256.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & mask);
        return Scale(Avx512BW.MultiplyAddAdjacent(u, Vector512.Load(x)), c, false, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scale(Vector512<short> pairs, float* c, bool g16, Vector512<float> acc)
    {
        var sums = Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(pairs, Vector512<short>.One));
        var idx = g16
            ? Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
            : Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        var scale = Avx512F.PermuteVar16x32(Vector128.Load(c).ToVector256Unsafe().ToVector512Unsafe(), idx);
        return Avx512F.FusedMultiplyAdd(sums, scale, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadI8(sbyte* p) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p)));
}
