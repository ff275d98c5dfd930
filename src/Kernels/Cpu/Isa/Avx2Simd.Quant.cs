using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Loom.Kernels.Cpu.Quant;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// The int8 dot products at 256 bits, 8 panel rows a register: AVX-VNNI's vpdpbusd where the CPU has
/// it (Alder Lake, Zen 5), otherwise AVX2's vpmaddubsw + vpmaddwd; vpsignb moves w's sign onto x so
/// |w| can be the unsigned operand.
/// </summary>
internal unsafe partial struct Avx2Simd
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotI8Panel(sbyte* w, sbyte* x, int groups, int group, float* ws, float* xs, float* acc)
    {
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int g = 0; g < groups; g++, ws += 32)
        {
            Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int k = 0; k < group; k += 4, w += 128)
            {
                Sse.Prefetch0(w + QuantPrefetch.Codes);
                Sse.Prefetch0(w + QuantPrefetch.Codes + 64);
                var xb = Vector256.Create(*(int*)(x + k)).AsSByte();
                var w0 = Avx.LoadVector256(w);
                var w1 = Avx.LoadVector256(w + 32);
                var w2 = Avx.LoadVector256(w + 64);
                var w3 = Avx.LoadVector256(w + 96);
                a0 = Dot(a0, Avx2.Abs(w0), Avx2.Sign(xb, w0));
                a1 = Dot(a1, Avx2.Abs(w1), Avx2.Sign(xb, w1));
                a2 = Dot(a2, Avx2.Abs(w2), Avx2.Sign(xb, w2));
                a3 = Dot(a3, Avx2.Abs(w3), Avx2.Sign(xb, w3));
            }

            var xg = Vector256.Create(xs[g]);
            f0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a0), Avx.Multiply(Avx.LoadVector256(ws), xg), f0);
            f1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a1), Avx.Multiply(Avx.LoadVector256(ws + 8), xg), f1);
            f2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a2), Avx.Multiply(Avx.LoadVector256(ws + 16), xg), f2);
            f3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a3), Avx.Multiply(Avx.LoadVector256(ws + 24), xg), f3);
            x += group;
        }

        Avx.Store(acc, f0);
        Avx.Store(acc + 8, f1);
        Avx.Store(acc + 16, f2);
        Avx.Store(acc + 24, f3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotU4Panel(byte* w, sbyte* x, int groups, float* ws, float* xs, int* qsum, float* acc)
    {
        var mask = Vector256.Create((byte)0x0F);
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int g = 0; g < groups; g++, ws += 32, x += 32, w += 512)
        {
            Vector256<int> a0, a1, a2, a3;
            if (AvxVnni.IsSupported)
            {
                U4Group<VnniStep, int>(w, x, mask, out a0, out a1, out a2, out a3);
            }
            else
            {
                var ones = Vector256.Create((short)1);
                U4Group<MaddubsStep, short>(w, x, mask, out var p0, out var p1, out var p2, out var p3);
                a0 = Avx2.MultiplyAddAdjacent(p0, ones);
                a1 = Avx2.MultiplyAddAdjacent(p1, ones);
                a2 = Avx2.MultiplyAddAdjacent(p2, ones);
                a3 = Avx2.MultiplyAddAdjacent(p3, ones);
            }

            var eight = Vector256.Create(8 * qsum[g]);
            a0 = Avx2.Subtract(a0, eight);
            a1 = Avx2.Subtract(a1, eight);
            a2 = Avx2.Subtract(a2, eight);
            a3 = Avx2.Subtract(a3, eight);
            var xg = Vector256.Create(xs[g]);
            f0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a0), Avx.Multiply(Avx.LoadVector256(ws), xg), f0);
            f1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a1), Avx.Multiply(Avx.LoadVector256(ws + 8), xg), f1);
            f2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a2), Avx.Multiply(Avx.LoadVector256(ws + 16), xg), f2);
            f3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a3), Avx.Multiply(Avx.LoadVector256(ws + 24), xg), f3);
        }

        Avx.Store(acc, f0);
        Avx.Store(acc + 8, f1);
        Avx.Store(acc + 16, f2);
        Avx.Store(acc + 24, f3);
    }

    /// <summary>
    /// Q4_K with integer sub-scales, as <see cref="Avx512Simd.DotQ4KPanel"/> explains: per group an
    /// int32 sum (AVX-VNNI) times sc by vpmulld, or int16 sums (vpmaddubsw) times sc by vpmaddwd. The
    /// float accumulators live in acc, read and written once a block, to leave the 16 registers to
    /// the group loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ4KPanel(byte* w, sbyte* x, int supers, sbyte* sc, sbyte* m, float* d, float* dmin, float* xd, int* qsum, float* acc)
    {
        var mask = Vector256.Create((byte)0x0F);
        for (int i = 0; i < 32; i += 8) Avx.Store(acc + i, Vector256<float>.Zero);
        for (int b = 0; b < supers; b++, d += 32, dmin += 32)
        {
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int g = 0; g < 8; g++, sc += 32, x += 32, w += 512)
            {
                if (AvxVnni.IsSupported)
                {
                    U4Group<VnniStep, int>(w, x, mask, out var a0, out var a1, out var a2, out var a3);
                    s0 = Avx2.Add(s0, Avx2.MultiplyLow(a0, Avx2.ConvertToVector256Int32((byte*)sc)));
                    s1 = Avx2.Add(s1, Avx2.MultiplyLow(a1, Avx2.ConvertToVector256Int32((byte*)sc + 8)));
                    s2 = Avx2.Add(s2, Avx2.MultiplyLow(a2, Avx2.ConvertToVector256Int32((byte*)sc + 16)));
                    s3 = Avx2.Add(s3, Avx2.MultiplyLow(a3, Avx2.ConvertToVector256Int32((byte*)sc + 24)));
                    continue;
                }

                U4Group<MaddubsStep, short>(w, x, mask, out var p0, out var p1, out var p2, out var p3);
                s0 = Avx2.Add(s0, Avx2.MultiplyAddAdjacent(p0, PairOf((byte*)sc)));
                s1 = Avx2.Add(s1, Avx2.MultiplyAddAdjacent(p1, PairOf((byte*)sc + 8)));
                s2 = Avx2.Add(s2, Avx2.MultiplyAddAdjacent(p2, PairOf((byte*)sc + 16)));
                s3 = Avx2.Add(s3, Avx2.MultiplyAddAdjacent(p3, PairOf((byte*)sc + 24)));
            }

            Vector256<int> n0 = default, n1 = default, n2 = default, n3 = default;
            for (int g = 0; g < 8; g++, m += 32)
            {
                var bs = Vector256.Create(qsum[8 * b + g]);
                n0 = Avx2.Add(n0, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32((byte*)m), bs));
                n1 = Avx2.Add(n1, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32((byte*)m + 8), bs));
                n2 = Avx2.Add(n2, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32((byte*)m + 16), bs));
                n3 = Avx2.Add(n3, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32((byte*)m + 24), bs));
            }

            var xg = Vector256.Create(xd[8 * b]);
            Flush(acc, s0, n0, d, dmin, xg);
            Flush(acc + 8, s1, n1, d + 8, dmin + 8, xg);
            Flush(acc + 16, s2, n2, d + 16, dmin + 16, xg);
            Flush(acc + 24, s3, n3, d + 24, dmin + 24, xg);
        }
    }

    /// <summary>
    /// Q6_K with integer sub-scales, as <see cref="Avx512Simd.DotQ6KPanel"/>, 8 rows a register: AVX-VNNI
    /// sums a group in int32 and vpmulld applies sc; otherwise each step's int16 pairs meet sc in
    /// vpmaddwd. The codes' +32 comes off per block in a second pass over the group sub-scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ6KPanel(byte* w, sbyte* x, int supers, sbyte* sc, float* d, float* xd, int* qsum, float* acc)
    {
        for (int i = 0; i < 32; i += 8) Avx.Store(acc + i, Vector256<float>.Zero);
        for (int b = 0; b < supers; b++, d += 32)
        {
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            sbyte* scb = sc;
            for (int g = 0; g < 16; g++, sc += 32, x += 16, w += 384)
            {
                for (int o = 0; o < 384; o += 64) Sse.Prefetch0(w + QuantPrefetch.Codes + o);
                s0 = Avx2.Add(s0, Q6Group(w, x, sc));
                s1 = Avx2.Add(s1, Q6Group(w + 32, x, sc + 8));
                s2 = Avx2.Add(s2, Q6Group(w + 64, x, sc + 16));
                s3 = Avx2.Add(s3, Q6Group(w + 96, x, sc + 24));
            }

            Vector256<int> n0 = default, n1 = default, n2 = default, n3 = default;
            for (int g = 0; g < 16; g++, scb += 32)
            {
                var qs = Vector256.Create(qsum[16 * b + g]);
                n0 = Avx2.Add(n0, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(scb), qs));
                n1 = Avx2.Add(n1, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(scb + 8), qs));
                n2 = Avx2.Add(n2, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(scb + 16), qs));
                n3 = Avx2.Add(n3, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(scb + 24), qs));
            }

            var xg = Vector256.Create(xd[16 * b]);
            Flush(acc, Avx2.Subtract(s0, Avx2.ShiftLeftLogical(n0, 5)), d, xg);
            Flush(acc + 8, Avx2.Subtract(s1, Avx2.ShiftLeftLogical(n1, 5)), d + 8, xg);
            Flush(acc + 16, Avx2.Subtract(s2, Avx2.ShiftLeftLogical(n2, 5)), d + 16, xg);
            Flush(acc + 24, Avx2.Subtract(s3, Avx2.ShiftLeftLogical(n3, 5)), d + 24, xg);
        }
    }

    /// <summary>
    /// Σ sc·(codes·x) over one 16-k group for 8 rows of a U6 panel (w at the rows' first bytes: the two
    /// low-nibble steps at +0 and +128, the high bits at +256), codes 0..63.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6Group(byte* w, sbyte* x, sbyte* sc)
    {
        var low = Vector256.Create((byte)0x0F);
        var bits = Vector256.Create((byte)0x30);
        var h = Avx.LoadVector256(w + 256).AsUInt16();
        var b0 = Avx.LoadVector256(w);
        var b1 = Avx.LoadVector256(w + 128);
        var q0 = Avx2.Or(Avx2.And(b0, low), Avx2.And(Avx2.ShiftLeftLogical(h, 4).AsByte(), bits));
        var q1 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(b0.AsUInt16(), 4).AsByte(), low), Avx2.And(Avx2.ShiftLeftLogical(h, 2).AsByte(), bits));
        var q2 = Avx2.Or(Avx2.And(b1, low), Avx2.And(h.AsByte(), bits));
        var q3 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(b1.AsUInt16(), 4).AsByte(), low), Avx2.And(Avx2.ShiftRightLogical(h, 2).AsByte(), bits));
        var x0 = Vector256.Create(*(int*)x).AsSByte();
        var x1 = Vector256.Create(*(int*)(x + 4)).AsSByte();
        var x2 = Vector256.Create(*(int*)(x + 8)).AsSByte();
        var x3 = Vector256.Create(*(int*)(x + 12)).AsSByte();
        if (AvxVnni.IsSupported)
        {
            var a = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, q0, x0), q1, x1);
            a = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(a, q2, x2), q3, x3);
            return Avx2.MultiplyLow(a, Avx2.ConvertToVector256Int32(sc));
        }

        // Two steps' pairs would reach 4·2·63·127: each step (at most 32004) meets sc on its own.
        var c = SignedPairOf(sc);
        var p0 = Avx2.Add(Avx2.MultiplyAddAdjacent(q0, x0), Avx2.MultiplyAddAdjacent(q1, x1));
        var p1 = Avx2.Add(Avx2.MultiplyAddAdjacent(q2, x2), Avx2.MultiplyAddAdjacent(q3, x3));
        return Avx2.Add(Avx2.MultiplyAddAdjacent(p0, c), Avx2.MultiplyAddAdjacent(p1, c));
    }

    /// <summary>acc += d·xg·s for 8 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Flush(float* acc, Vector256<int> s, float* d, Vector256<float> xg) =>
        Avx.Store(acc, Fma.MultiplyAdd(Avx.ConvertToVector256Single(s), Avx.Multiply(Avx.LoadVector256(d), xg), Avx.LoadVector256(acc)));

    /// <summary>8 signed bytes as int16 pairs (v, v), one int32 lane each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> SignedPairOf(sbyte* p)
    {
        var v = Avx2.ConvertToVector256Int32(p);
        return Avx2.Or(Avx2.And(v, Vector256.Create(0xFFFF)), Avx2.ShiftLeftLogical(v, 16)).AsInt16();
    }

    /// <summary>acc += d·xg·s − dmin·xg·n for 8 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Flush(float* acc, Vector256<int> s, Vector256<int> n, float* d, float* dmin, Vector256<float> xg)
    {
        var f = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s), Avx.Multiply(Avx.LoadVector256(d), xg), Avx.LoadVector256(acc));
        Avx.Store(acc, Fma.MultiplyAddNegated(Avx.ConvertToVector256Single(n), Avx.Multiply(Avx.LoadVector256(dmin), xg), f));
    }

    /// <summary>The low and high nibbles' vpmaddubsw products added: int16 pairs, at most 2·2·15·127 each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Products(Vector256<byte> b, Vector256<byte> mask, Vector256<sbyte> xl, Vector256<sbyte> xh) =>
        Avx2.Add(Avx2.MultiplyAddAdjacent(Avx2.And(b, mask), xl),
            Avx2.MultiplyAddAdjacent(Avx2.And(Avx2.ShiftRightLogical(b.AsUInt16(), 4).AsByte(), mask), xh));

    /// <summary>8 unsigned bytes as int16 pairs (v, v), one int32 lane each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> PairOf(byte* p)
    {
        var v = Avx2.ConvertToVector256Int32(p);
        return Avx2.Or(v, Avx2.ShiftLeftLogical(v, 16)).AsInt16();
    }

    /// <summary>
    /// One 32-k group of a U4 panel (512 bytes from w), 8 rows a register, accumulated by
    /// <typeparamref name="TStep"/>: exact int32 sums through AVX-VNNI, or int16 pairs through
    /// vpmaddubsw (the group's 8 add in int16, at most 8·2·15·127 = 30480, and the caller's one
    /// vpmaddwd a group widens them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void U4Group<TStep, T>(byte* w, sbyte* x, Vector256<byte> mask, out Vector256<T> a0, out Vector256<T> a1, out Vector256<T> a2, out Vector256<T> a3)
        where TStep : struct, IU4Step<T>
        where T : unmanaged
    {
        a0 = a1 = a2 = a3 = default;
        for (int k = 0; k < 32; k += 8, w += 128)
        {
            Sse.Prefetch0(w + QuantPrefetch.Codes);
            Sse.Prefetch0(w + QuantPrefetch.Codes + 64);
            var xl = Vector256.Create(*(int*)(x + k)).AsSByte();
            var xh = Vector256.Create(*(int*)(x + k + 4)).AsSByte();
            a0 = TStep.Add(a0, Avx.LoadVector256(w), mask, xl, xh);
            a1 = TStep.Add(a1, Avx.LoadVector256(w + 32), mask, xl, xh);
            a2 = TStep.Add(a2, Avx.LoadVector256(w + 64), mask, xl, xh);
            a3 = TStep.Add(a3, Avx.LoadVector256(w + 96), mask, xl, xh);
        }
    }

    /// <summary>How <see cref="U4Group{TStep,T}"/> adds one 4-row-by-8-k step of nibbles times activations into its accumulator.</summary>
    private interface IU4Step<T>
        where T : unmanaged
    {
        static abstract Vector256<T> Add(Vector256<T> acc, Vector256<byte> b, Vector256<byte> mask, Vector256<sbyte> xl, Vector256<sbyte> xh);
    }

    private struct VnniStep : IU4Step<int>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> b, Vector256<byte> mask, Vector256<sbyte> xl, Vector256<sbyte> xh) =>
            DotU4Vnni(acc, b, mask, xl, xh);
    }

    private struct MaddubsStep : IU4Step<short>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<short> Add(Vector256<short> acc, Vector256<byte> b, Vector256<byte> mask, Vector256<sbyte> xl, Vector256<sbyte> xh) =>
            Avx2.Add(acc, Products(b, mask, xl, xh));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotU4Vnni(Vector256<int> acc, Vector256<byte> b, Vector256<byte> mask, Vector256<sbyte> xl, Vector256<sbyte> xh)
    {
        var lo = Avx2.And(b, mask);
        var hi = Avx2.And(Avx2.ShiftRightLogical(b.AsUInt16(), 4).AsByte(), mask);
        return AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(acc, lo, xl), hi, xh);
    }

    /// <summary>acc + the sums of 4 consecutive unsigned × signed byte products, one int32 lane each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s)
    {
        if (AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(acc, u, s);
        return Avx2.Add(acc, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1)));
    }

    /// <summary>vpshufb gathers each lane's 4 rows by k, vpermd pairs the lanes, so each 8 bytes is one k of 8 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DecodeI8Step(sbyte* q, float* s, float* dst)
    {
        for (int h = 0; h < 4; h++)
        {
            var t = ByK(Avx.LoadVector256((byte*)q + 32 * h));
            var sc = Avx.LoadVector256(s + 8 * h);
            Avx.Store(dst + 8 * h, Avx.Multiply(Widen(t, 0), sc));
            Avx.Store(dst + 32 + 8 * h, Avx.Multiply(Widen(t, 1), sc));
            Avx.Store(dst + 64 + 8 * h, Avx.Multiply(Widen(t, 2), sc));
            Avx.Store(dst + 96 + 8 * h, Avx.Multiply(Widen(t, 3), sc));
        }
    }

    /// <summary>fp16 → fp32 as <see cref="Avx512Simd.WidenHalfScales"/> does it, 8 rows a register.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WidenHalfScales(ushort* h, float* dst)
    {
        var rebias = Vector256.Create(PanelDecode.HalfRebiasBits).AsSingle();
        for (int i = 0; i < 32; i += 8)
        {
            var x = Avx2.ConvertToVector256Int32(h + i).AsUInt32();
            var bits = ((x & Vector256.Create(0x8000u)) << 16) | ((x & Vector256.Create(0x7FFFu)) << 13);
            Avx.Store(dst + i, Avx.Multiply(bits.AsSingle(), rebias));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WidenScales(sbyte* sc, float* d, float* dst)
    {
        for (int i = 0; i < 32; i += 8)
            Avx.Store(dst + i, Avx.Multiply(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(sc + i)), Avx.LoadVector256(d + i)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DecodeU4Step(byte* q, float* s, float* m, float* dst)
    {
        var mask = Vector256.Create((byte)0x0F);
        for (int h = 0; h < 4; h++)
        {
            var b = Avx.LoadVector256(q + 32 * h);
            var lo = ByK(Avx2.And(b, mask));
            var hi = ByK(Avx2.And(Avx2.ShiftRightLogical(b.AsUInt16(), 4).AsByte(), mask));
            var sc = Avx.LoadVector256(s + 8 * h);
            var mn = Avx.LoadVector256(m + 8 * h);
            Avx.Store(dst + 8 * h, Fma.MultiplySubtract(Widen(lo, 0), sc, mn));
            Avx.Store(dst + 32 + 8 * h, Fma.MultiplySubtract(Widen(lo, 1), sc, mn));
            Avx.Store(dst + 64 + 8 * h, Fma.MultiplySubtract(Widen(lo, 2), sc, mn));
            Avx.Store(dst + 96 + 8 * h, Fma.MultiplySubtract(Widen(lo, 3), sc, mn));
            Avx.Store(dst + 128 + 8 * h, Fma.MultiplySubtract(Widen(hi, 0), sc, mn));
            Avx.Store(dst + 160 + 8 * h, Fma.MultiplySubtract(Widen(hi, 1), sc, mn));
            Avx.Store(dst + 192 + 8 * h, Fma.MultiplySubtract(Widen(hi, 2), sc, mn));
            Avx.Store(dst + 224 + 8 * h, Fma.MultiplySubtract(Widen(hi, 3), sc, mn));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> ByK(Vector256<byte> v)
    {
        var lanes = Avx2.Shuffle(v, Vector256.Create((byte)0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
        return Avx2.PermuteVar8x32(lanes.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsByte();
    }

    /// <summary>
    /// Quarter j (8 signed bytes: one k of 8 rows) as 8 floats. vpmovsxbd reads the low 8 bytes of
    /// an xmm, so each quarter is at most an extract and a byte shift away (a GetElement through a
    /// general register cost a quarter of the batched decode's time).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(Vector256<byte> t, [System.Diagnostics.CodeAnalysis.ConstantExpected] byte j)
    {
        var half = j < 2 ? t.GetLower() : Avx2.ExtractVector128(t, 1);
        if ((j & 1) != 0) half = Sse2.ShiftRightLogical128BitLane(half, 8);
        return Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(half.AsSByte()));
    }
}
