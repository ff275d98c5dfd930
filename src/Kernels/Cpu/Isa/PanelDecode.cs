using System.Runtime.Intrinsics;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>Widening of quantized panel steps and scales, for the implementations without a byte shuffle here.</summary>
internal static unsafe class PanelDecode
{
    public static void I8Step(sbyte* q, float* s, float* dst)
    {
        for (int r = 0; r < 32; r++)
            for (int j = 0; j < 4; j++) dst[j * 32 + r] = q[4 * r + j] * s[r];
    }

    public static void U4Step(byte* q, float* s, float* m, float* dst)
    {
        for (int r = 0; r < 32; r++)
        {
            for (int j = 0; j < 4; j++)
            {
                dst[j * 32 + r] = (q[4 * r + j] & 0xF) * s[r] - m[r];
                dst[(j + 4) * 32 + r] = (q[4 * r + j] >> 4) * s[r] - m[r];
            }
        }
    }

    /// <summary>2^112 as float bits: the rebias from fp16's exponent to fp32's once the bits sit 13 places up.</summary>
    public const uint HalfRebiasBits = 0x77800000;

    /// <summary>fp16 → fp32 over 32 rows with the Vector128 API, as <see cref="Avx512Simd.WidenHalfScales"/> does it.</summary>
    public static void WidenHalfScales128(ushort* h, float* dst)
    {
        for (int i = 0; i < 32; i += 8)
        {
            var v = Vector128.Load(h + i);
            HalfToSingle(Vector128.WidenLower(v)).Store(dst + i);
            HalfToSingle(Vector128.WidenUpper(v)).Store(dst + i + 4);
        }
    }

    private static Vector128<float> HalfToSingle(Vector128<uint> x) =>
        (((x & Vector128.Create(0x8000u)) << 16) | ((x & Vector128.Create(0x7FFFu)) << 13)).AsSingle() * Vector128.Create(HalfRebiasBits).AsSingle();

    /// <summary>dst[r] = d[r]·sc[r] over 32 rows with the Vector128 API (NEON, SSE).</summary>
    public static void WidenScales128(sbyte* sc, float* d, float* dst)
    {
        for (int h = 0; h < 32; h += 16)
        {
            var b = Vector128.Load(sc + h);
            var lo = Vector128.WidenLower(b);
            var hi = Vector128.WidenUpper(b);
            (Vector128.ConvertToSingle(Vector128.WidenLower(lo)) * Vector128.Load(d + h)).Store(dst + h);
            (Vector128.ConvertToSingle(Vector128.WidenUpper(lo)) * Vector128.Load(d + h + 4)).Store(dst + h + 4);
            (Vector128.ConvertToSingle(Vector128.WidenLower(hi)) * Vector128.Load(d + h + 8)).Store(dst + h + 8);
            (Vector128.ConvertToSingle(Vector128.WidenUpper(hi)) * Vector128.Load(d + h + 12)).Store(dst + h + 12);
        }
    }

    /// <summary>s[i] += a[i]·sc for 32 rows as 8 vectors of 4: a K-quant group's int32 sums times its byte sub-scales.</summary>
    public static void ScaleGroup128(Vector128<int>* a, sbyte* sc, Vector128<int>* s)
    {
        for (int i = 0; i < 8; i++) s[i] += a[i] * Bytes4(sc + 4 * i);
    }

    /// <summary>acc += s·d·xd for 32 rows: a K-quant 256-block's integer sums, scaled once.</summary>
    public static void FlushBlock128(Vector128<int>* s, float* d, float xd, float* acc)
    {
        var xg = Vector128.Create(xd);
        for (int i = 0; i < 8; i++)
            (Vector128.Load(acc + 4 * i) + Vector128.ConvertToSingle(s[i]) * (Vector128.Load(d + 4 * i) * xg)).Store(acc + 4 * i);
    }

    /// <summary>
    /// acc −= dmin·xd·Σ_g m_g·qsum_g for 32 rows: a Q4_K 256-block's mins (m as [8 groups][32 rows])
    /// applied to the activation sums in int32, as ggml does.
    /// </summary>
    public static void FlushMins128(sbyte* m, int* qsum, float* dmin, float xd, float* acc)
    {
        var xg = Vector128.Create(xd);
        for (int i = 0; i < 8; i++)
        {
            var n = Vector128<int>.Zero;
            for (int g = 0; g < 8; g++) n += Bytes4(m + 32 * g + 4 * i) * Vector128.Create(qsum[g]);
            (Vector128.Load(acc + 4 * i) - Vector128.ConvertToSingle(n) * (Vector128.Load(dmin + 4 * i) * xg)).Store(acc + 4 * i);
        }
    }

    private static Vector128<int> Bytes4(sbyte* p) =>
        Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(int*)p).AsSByte()));

    /// <summary>
    /// One 16-k group of a U6 (Q6_K) panel, 384 bytes, as the I8 layout's 4 steps (512 bytes, codes
    /// − 32 as signed bytes): what the decoded path and the Vector128 and scalar dot products read.
    /// </summary>
    public static void U6Group(byte* src, sbyte* dst)
    {
        var low = Vector128.Create((byte)0x0F);
        var two = Vector128.Create((byte)0x03);
        var bias = Vector128.Create((byte)32);
        for (int i = 0; i < 128; i += 16)
        {
            var h = Vector128.Load(src + 256 + i);
            for (int s = 0; s < 2; s++)
            {
                var b = Vector128.Load(src + 128 * s + i);
                var lo = (b & low) | (((h >>> (4 * s)) & two) << 4);
                var hi = (b >>> 4) | (((h >>> (4 * s + 2)) & two) << 4);
                (lo - bias).AsSByte().Store(dst + 256 * s + i);
                (hi - bias).AsSByte().Store(dst + 256 * s + 128 + i);
            }
        }
    }
}
