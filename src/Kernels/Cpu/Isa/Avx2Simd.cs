using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// AVX2 + FMA: 8 lanes and 16 ymm registers, so the GEMM block is 6 rows × 2 accumulators
/// (12 accumulators, 2 weight registers and a broadcast: the classic 6×16 Haswell kernel).
/// </summary>
internal unsafe partial struct Avx2Simd : ISimd<Vector256<float>>
{
    public static int Lanes => 8;

    public static int MaxRows => 6;

    /// <summary>Measured on Zen 5 (AVX-VNNI and vpmaddubsw alike): the int8 path 1.4-2.5x the decoded one from 16 to 256 rows.</summary>
    public static int QuantDecodeMinRows => 256;

    public static Vector256<float> Zero => Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Splat(float x) => Vector256.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* p) => Avx.LoadVector256(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> v, float* p) => Avx.Store(p, v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => Avx.Add(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => Avx.Subtract(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => Avx.Multiply(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => Avx.Divide(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Fma.MultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Avx.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v)
    {
        var s = Sse.Add(v.GetLower(), v.GetUpper());
        s = Sse.Add(s, Sse.MoveHighToLow(s, s));
        s = Sse.AddScalar(s, Sse.Shuffle(s, s, 0b01));
        return s.ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector256<float> v) => Sse128.MaxAcross(Sse.Max(v.GetLower(), v.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x) => VectorMath.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadBf16Pair(byte* p, out Vector256<float> lo, out Vector256<float> hi)
    {
        var v = Avx.LoadVector256((uint*)p);
        lo = Avx2.ShiftLeftLogical(v, 16).AsSingle();
        hi = Avx2.And(v, Vector256.Create(0xFFFF0000u)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadBf16(ushort* p) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreBf16(Vector256<float> v, ushort* p)
    {
        var u = v.AsUInt32();
        var r = Avx2.ShiftRightLogical(Avx2.Add(Avx2.Add(u, Vector256.Create(0x7FFFu)), Avx2.And(Avx2.ShiftRightLogical(u, 16), Vector256<uint>.One)), 16);
        // Each 32-bit lane now holds a value below 2^16, so the saturating pack is exact.
        Sse41.PackUnsignedSaturate(r.GetLower().AsInt32(), r.GetUpper().AsInt32()).Store(p);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(void* p) => Sse.Prefetch0(p);

    public static int Transpose12(float* src, int k, float* dst) => 0;
}
