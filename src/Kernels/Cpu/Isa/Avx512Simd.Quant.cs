using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Loom.Kernels.Cpu.Quant;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// The int8 dot products at 512 bits, 16 panel rows a register: vpmaddubsw (unsigned × signed bytes,
/// pairs to int16) then vpmaddwd against ones (to int32). .NET 10 exposes no AVX512-VNNI (vpdpbusd):
/// AvxVnni is the VEX form, absent on Zen 4, so this is the sequence llama.cpp uses without VNNI.
/// </summary>
internal unsafe partial struct Avx512Simd
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotI8Panel(sbyte* w, sbyte* x, int groups, int group, float* ws, float* xs, float* acc)
    {
        var ones = Vector512.Create((short)1);
        Vector512<float> f0 = default, f1 = default;
        for (int g = 0; g < groups; g++, ws += 32)
        {
            Vector512<int> a0 = default, a1 = default;
            for (int k = 0; k < group; k += 4, w += 128)
            {
                Sse.Prefetch0(w + QuantPrefetch.Codes);
                Sse.Prefetch0(w + QuantPrefetch.Codes + 64);
                var xb = Vector512.Create(*(int*)(x + k)).AsSByte();
                var w0 = Vector512.Load(w);
                var w1 = Vector512.Load(w + 64);
                a0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(w0), SignOf(xb, w0)), ones);
                a1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(w1), SignOf(xb, w1)), ones);
            }

            var xg = Vector512.Create(xs[g]);
            f0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a0), Vector512.Load(ws) * xg, f0);
            f1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a1), Vector512.Load(ws + 16) * xg, f1);
            x += group;
        }

        f0.Store(acc);
        f1.Store(acc + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotU4Panel(byte* w, sbyte* x, int groups, float* ws, float* xs, int* qsum, float* acc)
    {
        var ones = Vector512.Create((short)1);
        var mask = Vector512.Create((byte)0x0F);
        Vector512<float> f0 = default, f1 = default;
        for (int g = 0; g < groups; g++, ws += 32, x += 32, w += 512)
        {
            U4Group(w, x, mask, out var p0, out var p1);
            var eight = Vector512.Create(8 * qsum[g]);
            var a0 = Avx512BW.MultiplyAddAdjacent(p0, ones) - eight;
            var a1 = Avx512BW.MultiplyAddAdjacent(p1, ones) - eight;
            var xg = Vector512.Create(xs[g]);
            f0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a0), Vector512.Load(ws) * xg, f0);
            f1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a1), Vector512.Load(ws + 16) * xg, f1);
        }

        f0.Store(acc);
        f1.Store(acc + 16);
    }

    /// <summary>
    /// Q4_K the way ggml's vec_dot applies its sub-scales: each group's 8 vpmaddubsw results add in
    /// int16 (at most 8·2·15·127 = 30480), one vpmaddwd against the row's sc (as an int16 pair) makes
    /// the scaled int32 sum, and the mins are m·Σx_q in int32, so floats are touched once per 256-block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ4KPanel(byte* w, sbyte* x, int supers, sbyte* sc, sbyte* m, float* d, float* dmin, float* xd, int* qsum, float* acc)
    {
        var mask = Vector512.Create((byte)0x0F);
        Vector512<float> f0 = default, f1 = default;
        for (int b = 0; b < supers; b++, d += 32, dmin += 32)
        {
            Vector512<int> s0 = default, s1 = default, n0 = default, n1 = default;
            for (int g = 0; g < 8; g++, sc += 32, m += 32, x += 32, w += 512)
            {
                U4Group(w, x, mask, out var p0, out var p1);
                s0 += Avx512BW.MultiplyAddAdjacent(p0, PairOf((byte*)sc));
                s1 += Avx512BW.MultiplyAddAdjacent(p1, PairOf((byte*)sc + 16));
                var bs = Vector512.Create(qsum[8 * b + g]);
                n0 += Avx512F.ConvertToVector512Int32(Vector128.Load((byte*)m)) * bs;
                n1 += Avx512F.ConvertToVector512Int32(Vector128.Load((byte*)m + 16)) * bs;
            }

            var xg = Vector512.Create(xd[8 * b]);
            f0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s0), Vector512.Load(d) * xg, f0);
            f1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s1), Vector512.Load(d + 16) * xg, f1);
            f0 = Avx512F.FusedMultiplyAddNegated(Avx512F.ConvertToVector512Single(n0), Vector512.Load(dmin) * xg, f0);
            f1 = Avx512F.FusedMultiplyAddNegated(Avx512F.ConvertToVector512Single(n1), Vector512.Load(dmin + 16) * xg, f1);
        }

        f0.Store(acc);
        f1.Store(acc + 16);
    }

    /// <summary>
    /// Q6_K with integer sub-scales, as <see cref="DotQ4KPanel"/>: each code is its low nibble OR'd with
    /// its 2 high bits moved to bits 4-5 (0..63); a step's two vpmaddubsw results add in int16 (at
    /// most 2·2·63·127 = 32004) and one vpmaddwd applies the row's signed sc; the codes' +32 comes off
    /// once a block as 32·Σ_g sc·Σx_q.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ6KPanel(byte* w, sbyte* x, int supers, sbyte* sc, float* d, float* xd, int* qsum, float* acc)
    {
        var low = Vector512.Create((byte)0x0F);
        var bits = Vector512.Create((byte)0x30);
        Vector512<float> f0 = default, f1 = default;
        for (int b = 0; b < supers; b++, d += 32)
        {
            Vector512<int> s0 = default, s1 = default, n0 = default, n1 = default;
            for (int g = 0; g < 16; g++, sc += 32, x += 16, w += 384)
            {
                for (int o = 0; o < 384; o += 64) Sse.Prefetch0(w + QuantPrefetch.Codes + o);
                var c0 = Avx512F.ConvertToVector512Int32(Vector128.Load(sc));
                var c1 = Avx512F.ConvertToVector512Int32(Vector128.Load(sc + 16));
                var k0 = SignedPair(c0);
                var k1 = SignedPair(c1);
                var h0 = Vector512.Load(w + 256).AsUInt16();
                var h1 = Vector512.Load(w + 320).AsUInt16();
                var xl = Vector512.Create(*(int*)x).AsSByte();
                var xh = Vector512.Create(*(int*)(x + 4)).AsSByte();
                s0 += Avx512BW.MultiplyAddAdjacent(Q6Step(Vector512.Load(w), (h0 << 4).AsByte() & bits, (h0 << 2).AsByte() & bits, low, xl, xh), k0);
                s1 += Avx512BW.MultiplyAddAdjacent(Q6Step(Vector512.Load(w + 64), (h1 << 4).AsByte() & bits, (h1 << 2).AsByte() & bits, low, xl, xh), k1);
                xl = Vector512.Create(*(int*)(x + 8)).AsSByte();
                xh = Vector512.Create(*(int*)(x + 12)).AsSByte();
                s0 += Avx512BW.MultiplyAddAdjacent(Q6Step(Vector512.Load(w + 128), h0.AsByte() & bits, (h0 >>> 2).AsByte() & bits, low, xl, xh), k0);
                s1 += Avx512BW.MultiplyAddAdjacent(Q6Step(Vector512.Load(w + 192), h1.AsByte() & bits, (h1 >>> 2).AsByte() & bits, low, xl, xh), k1);
                var qs = Vector512.Create(qsum[16 * b + g]);
                n0 += c0 * qs;
                n1 += c1 * qs;
            }

            var xg = Vector512.Create(xd[16 * b]);
            f0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s0 - (n0 << 5)), Vector512.Load(d) * xg, f0);
            f1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s1 - (n1 << 5)), Vector512.Load(d + 16) * xg, f1);
        }

        f0.Store(acc);
        f1.Store(acc + 16);
    }

    /// <summary>One 8-k U6 step for 16 rows: the low-nibble codes (k..k+3) and high-nibble ones (k+4..k+7) with their high bits, times x, as int16 pairs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Q6Step(Vector512<byte> b, Vector512<byte> hl, Vector512<byte> hh, Vector512<byte> low, Vector512<sbyte> xl, Vector512<sbyte> xh) =>
        Avx512BW.MultiplyAddAdjacent((b & low) | hl, xl) + Avx512BW.MultiplyAddAdjacent((Vector512.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & low) | hh, xh);

    /// <summary>int32 lanes (signed sub-scales) as int16 pairs (v, v).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> SignedPair(Vector512<int> v) => ((v & Vector512.Create(0xFFFF)) | (v << 16)).AsInt16();

    /// <summary>
    /// One 32-k group of a U4 panel (512 bytes from w): each row's products as int16 pairs, rows 0-15
    /// in p0 and 16-31 in p1. A pair is at most 2·15·127 per vpmaddubsw, so the group's 8 add in int16
    /// (at most 30480) and one vpmaddwd a group widens them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void U4Group(byte* w, sbyte* x, Vector512<byte> mask, out Vector512<short> p0, out Vector512<short> p1)
    {
        p0 = default;
        p1 = default;
        for (int k = 0; k < 32; k += 8, w += 128)
        {
            Sse.Prefetch0(w + QuantPrefetch.Codes);
            Sse.Prefetch0(w + QuantPrefetch.Codes + 64);
            var xl = Vector512.Create(*(int*)(x + k)).AsSByte();
            var xh = Vector512.Create(*(int*)(x + k + 4)).AsSByte();
            var b0 = Vector512.Load(w);
            var b1 = Vector512.Load(w + 64);
            p0 += Avx512BW.MultiplyAddAdjacent(b0 & mask, xl) + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(b0.AsUInt16(), 4).AsByte() & mask, xh);
            p1 += Avx512BW.MultiplyAddAdjacent(b1 & mask, xl) + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(b1.AsUInt16(), 4).AsByte() & mask, xh);
        }
    }

    /// <summary>16 unsigned bytes (6-bit sub-scales) as int16 pairs (v, v), one int32 lane each: vpmaddwd's multiplier for a row's two int16 sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> PairOf(byte* p)
    {
        var v = Avx512F.ConvertToVector512Int32(Vector128.Load(p));
        return (v | (v << 16)).AsInt16();
    }

    /// <summary>x with w's sign (−x where w &lt; 0), so |w|·that = w·x; one masked subtract.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> SignOf(Vector512<sbyte> x, Vector512<sbyte> w) =>
        Vector512.ConditionalSelect(Vector512.LessThan(w, Vector512<sbyte>.Zero), Vector512<sbyte>.Zero - x, x);

    /// <summary>
    /// vpshufb gathers each 128-bit lane's 4 rows by k, vpermd gathers the lanes, so each 16-byte
    /// quarter is one k of 16 rows, widened with vpmovsxbd.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DecodeI8Step(sbyte* q, float* s, float* dst)
    {
        for (int h = 0; h < 2; h++)
        {
            var t = ByK(Vector512.Load((byte*)q + 64 * h));
            var sc = Vector512.Load(s + 16 * h);
            (Widen(t, 0) * sc).Store(dst + 16 * h);
            (Widen(t, 1) * sc).Store(dst + 32 + 16 * h);
            (Widen(t, 2) * sc).Store(dst + 64 + 16 * h);
            (Widen(t, 3) * sc).Store(dst + 96 + 16 * h);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DecodeU4Step(byte* q, float* s, float* m, float* dst)
    {
        var mask = Vector512.Create((byte)0x0F);
        for (int h = 0; h < 2; h++)
        {
            var b = Vector512.Load(q + 64 * h);
            var lo = ByK(b & mask);
            var hi = ByK(Vector512.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & mask);
            var sc = Vector512.Load(s + 16 * h);
            var mn = Vector512.Load(m + 16 * h);
            Avx512F.FusedMultiplySubtract(Widen(lo, 0), sc, mn).Store(dst + 16 * h);
            Avx512F.FusedMultiplySubtract(Widen(lo, 1), sc, mn).Store(dst + 32 + 16 * h);
            Avx512F.FusedMultiplySubtract(Widen(lo, 2), sc, mn).Store(dst + 64 + 16 * h);
            Avx512F.FusedMultiplySubtract(Widen(lo, 3), sc, mn).Store(dst + 96 + 16 * h);
            Avx512F.FusedMultiplySubtract(Widen(hi, 0), sc, mn).Store(dst + 128 + 16 * h);
            Avx512F.FusedMultiplySubtract(Widen(hi, 1), sc, mn).Store(dst + 160 + 16 * h);
            Avx512F.FusedMultiplySubtract(Widen(hi, 2), sc, mn).Store(dst + 192 + 16 * h);
            Avx512F.FusedMultiplySubtract(Widen(hi, 3), sc, mn).Store(dst + 224 + 16 * h);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WidenScales(sbyte* sc, float* d, float* dst)
    {
        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(sc))) * Vector512.Load(d)).Store(dst);
        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(sc + 16))) * Vector512.Load(d + 16)).Store(dst + 16);
    }

    /// <summary>
    /// fp16 → fp32 with integer ops (.NET 10 exposes no vcvtph2ps): sign to bit 31, exponent and
    /// mantissa shifted up 13, times 2^112 (<see cref="PanelDecode.HalfRebiasBits"/>) to rebias; exact for normal, subnormal and zero halves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WidenHalfScales(ushort* h, float* dst)
    {
        var rebias = Vector512.Create(PanelDecode.HalfRebiasBits).AsSingle();
        for (int i = 0; i < 32; i += 16)
        {
            var x = Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i));
            var bits = ((x & Vector512.Create(0x8000u)) << 16) | ((x & Vector512.Create(0x7FFFu)) << 13);
            (bits.AsSingle() * rebias).Store(dst + i);
        }
    }

    /// <summary>16 rows × 4 k (row-major bytes) reordered to 4 k × 16 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> ByK(Vector512<byte> v)
    {
        var lanes = Avx512BW.Shuffle(v, Vector512.Create((byte)0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
        return Avx512F.PermuteVar16x32(lanes.AsInt32(), Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)).AsByte();
    }

    /// <summary>Quarter j (16 signed bytes) as 16 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector512<byte> t, [System.Diagnostics.CodeAnalysis.ConstantExpected] byte j) =>
        Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Avx512F.ExtractVector128(t.AsSByte(), j)));
}
