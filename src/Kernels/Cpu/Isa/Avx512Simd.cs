using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>AVX-512F: 16 lanes, 32 zmm registers (a 12-row GEMM block is 24 accumulators).</summary>
internal unsafe partial struct Avx512Simd : ISimd<Vector512<float>>
{
    public static int Lanes => 16;

    public static int MaxRows => 12;

    /// <summary>Measured on Zen 5: the int8 path 1.0-1.9x the decoded one from 16 to 256 rows, 0.7-1.7x at 512 (Q8_0 lowest).</summary>
    public static int QuantDecodeMinRows => 256;

    public static Vector512<float> Zero => Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Splat(float x) => Vector512.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(float* p) => Vector512.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> v, float* p) => v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MulAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Avx512F.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Avx512F.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> v) => Vector512.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector512<float> v)
    {
        var h = Avx.Max(v.GetLower(), v.GetUpper());
        return Sse128.MaxAcross(Sse.Max(h.GetLower(), h.GetUpper()));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x) => VectorMath.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadBf16Pair(byte* p, out Vector512<float> lo, out Vector512<float> hi)
    {
        var v = Vector512.Load((uint*)p);
        lo = Avx512F.ShiftLeftLogical(v, 16).AsSingle();
        hi = (v & Vector512.Create(0xFFFF0000u)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadBf16(ushort* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load(p)), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreBf16(Vector512<float> v, ushort* p)
    {
        var u = v.AsUInt32();
        var r = (u + Vector512.Create(0x7FFFu) + ((u >> 16) & Vector512<uint>.One)) >> 16;
        Avx512F.ConvertToVector256UInt16(r).Store(p);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(void* p) => Sse.Prefetch0(p);

    /// <summary>
    /// Packs 12 rows into [k][12] 16 columns at a time with an in-register 16×16 transpose (rows
    /// 12-15 zero); scalar scatter costs ~0.6 ns a float, 5-7% of a prefill GEMM.
    /// </summary>
    public static int Transpose12(float* src, int k, float* dst)
    {
        var zero = Vector512<float>.Zero;
        int kk = 0;
        for (; kk + 16 <= k; kk += 16)
        {
            float* s = src + kk;
            var t0 = Avx512F.UnpackLow(Vector512.Load(s), Vector512.Load(s + k));
            var t1 = Avx512F.UnpackHigh(Vector512.Load(s), Vector512.Load(s + k));
            var t2 = Avx512F.UnpackLow(Vector512.Load(s + 2 * k), Vector512.Load(s + 3 * k));
            var t3 = Avx512F.UnpackHigh(Vector512.Load(s + 2 * k), Vector512.Load(s + 3 * k));
            var t4 = Avx512F.UnpackLow(Vector512.Load(s + 4 * k), Vector512.Load(s + 5 * k));
            var t5 = Avx512F.UnpackHigh(Vector512.Load(s + 4 * k), Vector512.Load(s + 5 * k));
            var t6 = Avx512F.UnpackLow(Vector512.Load(s + 6 * k), Vector512.Load(s + 7 * k));
            var t7 = Avx512F.UnpackHigh(Vector512.Load(s + 6 * k), Vector512.Load(s + 7 * k));
            var t8 = Avx512F.UnpackLow(Vector512.Load(s + 8 * k), Vector512.Load(s + 9 * k));
            var t9 = Avx512F.UnpackHigh(Vector512.Load(s + 8 * k), Vector512.Load(s + 9 * k));
            var t10 = Avx512F.UnpackLow(Vector512.Load(s + 10 * k), Vector512.Load(s + 11 * k));
            var t11 = Avx512F.UnpackHigh(Vector512.Load(s + 10 * k), Vector512.Load(s + 11 * k));

            // u[g*4 + j]: in 128-bit lane L, column 4L+j of rows 4g..4g+3.
            Span4 u0 = Quad(t0, t1, t2, t3), u1 = Quad(t4, t5, t6, t7), u2 = Quad(t8, t9, t10, t11);
            float* d = dst + (long)kk * 12;
            StoreColumns(u0.A, u1.A, u2.A, zero, d, 0);
            StoreColumns(u0.B, u1.B, u2.B, zero, d, 1);
            StoreColumns(u0.C, u1.C, u2.C, zero, d, 2);
            StoreColumns(u0.D, u1.D, u2.D, zero, d, 3);
        }

        return kk;
    }

    private struct Span4
    {
        public Vector512<float> A, B, C, D;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Span4 Quad(Vector512<float> t0, Vector512<float> t1, Vector512<float> t2, Vector512<float> t3) => new()
    {
        A = Avx512F.UnpackLow(t0.AsDouble(), t2.AsDouble()).AsSingle(),
        B = Avx512F.UnpackHigh(t0.AsDouble(), t2.AsDouble()).AsSingle(),
        C = Avx512F.UnpackLow(t1.AsDouble(), t3.AsDouble()).AsSingle(),
        D = Avx512F.UnpackHigh(t1.AsDouble(), t3.AsDouble()).AsSingle(),
    };

    /// <summary>Gathers lane L of the four row groups into column 4L+j and stores its 12 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreColumns(Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3, float* d, int j)
    {
        var v = Avx512F.Shuffle4x128(g0, g1, 0x88);
        var v2 = Avx512F.Shuffle4x128(g0, g1, 0xDD);
        var w = Avx512F.Shuffle4x128(g2, g3, 0x88);
        var w2 = Avx512F.Shuffle4x128(g2, g3, 0xDD);
        Store12(Avx512F.Shuffle4x128(v, w, 0x88), d + j * 12);
        Store12(Avx512F.Shuffle4x128(v2, w2, 0x88), d + (4 + j) * 12);
        Store12(Avx512F.Shuffle4x128(v, w, 0xDD), d + (8 + j) * 12);
        Store12(Avx512F.Shuffle4x128(v2, w2, 0xDD), d + (12 + j) * 12);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store12(Vector512<float> v, float* d)
    {
        v.GetLower().Store(d);
        v.GetUpper().GetLower().Store(d + 8);
    }
}

/// <summary>Horizontal reductions of one xmm, shared by the x86 implementations.</summary>
internal static class Sse128
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector128<float> g)
    {
        g = Sse.Max(g, Sse.Shuffle(g, g, 0b01_00_11_10));
        g = Sse.Max(g, Sse.Shuffle(g, g, 0b10_11_00_01));
        return g.ToScalar();
    }
}
