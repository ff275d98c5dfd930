// Written here: no NuGet package writes ggml's quantized blocks; these make test and benchmark GGUF files.
namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// Encodes fp32 rows into ggml blocks (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K). Plain round-to-nearest with the
/// scales chosen from each block's range: simpler than llama.cpp's searched scales (slightly more
/// error), but every file it writes is a valid GGUF tensor that llama.cpp decodes identically.
/// </summary>
public static unsafe class GgmlQuantizer
{
    public static byte[] QuantizeRow(DType type, ReadOnlySpan<float> x)
    {
        int be = type.BlockElements();
        if (x.Length % be != 0) throw new ArgumentException($"a {type} row needs a multiple of {be} elements, got {x.Length}");
        var dst = new byte[type.ByteCount(x.Length)];
        fixed (float* s = x)
        fixed (byte* d = dst)
        {
            for (int b = 0; b < x.Length / be; b++)
            {
                float* xb = s + b * be;
                byte* db = d + b * type.BlockBytes();
                switch (type)
                {
                    case DType.Q8_0: Q8_0(xb, db); break;
                    case DType.Q4_0: Q4_0(xb, db); break;
                    case DType.Q5_0: Q5_0(xb, db); break;
                    case DType.Q4_K: Q4K(xb, db); break;
                    case DType.Q6_K: Q6K(xb, db); break;
                    default: throw new NotSupportedException($"{type} is not a quantized type");
                }
            }
        }

        return dst;
    }

    private static ushort H(float v) => BitConverter.HalfToUInt16Bits((Half)v);

    private static int Round(float v) => (int)MathF.Round(v, MidpointRounding.AwayFromZero);

    private static void Q8_0(float* x, byte* dst)
    {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = MathF.Max(amax, MathF.Abs(x[i]));
        float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
        *(ushort*)dst = H(d);
        var q = (sbyte*)(dst + 2);
        for (int i = 0; i < 32; i++) q[i] = (sbyte)Math.Clamp(Round(x[i] * id), -127, 127);
    }

    /// <summary>The element of largest magnitude, with its sign (the first of equals), as ggml's Q4_0, Q5_0 and Q6_K scale it.</summary>
    private static float SignedMax(float* x, int n)
    {
        float amax = 0, max = 0;
        for (int i = 0; i < n; i++)
        {
            if (MathF.Abs(x[i]) > amax)
            {
                amax = MathF.Abs(x[i]);
                max = x[i];
            }
        }

        return max;
    }

    /// <summary>As ggml: the signed value of largest magnitude maps to −8, so d = max / −8.</summary>
    private static void Q4_0(float* x, byte* dst)
    {
        float d = SignedMax(x, 32) / -8f, id = d != 0 ? 1f / d : 0f;
        *(ushort*)dst = H(d);
        byte* q = dst + 2;
        for (int i = 0; i < 16; i++)
        {
            int a = Math.Min(15, (int)(x[i] * id + 8.5f)), b = Math.Min(15, (int)(x[i + 16] * id + 8.5f));
            q[i] = (byte)(Math.Max(0, a) | (Math.Max(0, b) << 4));
        }
    }

    /// <summary>As ggml: the signed value of largest magnitude maps to −16, so d = max / −16; bit 4 of each code goes to the high bits.</summary>
    private static void Q5_0(float* x, byte* dst)
    {
        float d = SignedMax(x, 32) / -16f, id = d != 0 ? 1f / d : 0f;
        *(ushort*)dst = H(d);
        uint qh = 0;
        byte* q = dst + 6;
        for (int i = 0; i < 16; i++)
        {
            int a = Math.Clamp((int)(x[i] * id + 16.5f), 0, 31), b = Math.Clamp((int)(x[i + 16] * id + 16.5f), 0, 31);
            q[i] = (byte)((a & 0xF) | ((b & 0xF) << 4));
            qh |= (uint)(a >> 4) << i | (uint)(b >> 4) << (i + 16);
        }

        *(uint*)(dst + 2) = qh;
    }

    private static void Q4K(float* x, byte* dst)
    {
        Span<float> scale = stackalloc float[8], min = stackalloc float[8];
        for (int s = 0; s < 8; s++)
        {
            float lo = 0, hi = 0;
            for (int i = 0; i < 32; i++)
            {
                lo = MathF.Min(lo, x[s * 32 + i]);
                hi = MathF.Max(hi, x[s * 32 + i]);
            }

            scale[s] = (hi - lo) / 15f;
            min[s] = -lo;
        }

        float maxScale = 0, maxMin = 0;
        for (int s = 0; s < 8; s++)
        {
            maxScale = MathF.Max(maxScale, scale[s]);
            maxMin = MathF.Max(maxMin, min[s]);
        }

        float d = (float)(Half)(maxScale / 63f), dmin = (float)(Half)(maxMin / 63f);
        *(ushort*)dst = H(d);
        *(ushort*)(dst + 2) = H(dmin);
        Span<int> sc = stackalloc int[8], m = stackalloc int[8];
        for (int s = 0; s < 8; s++)
        {
            sc[s] = d > 0 ? Math.Clamp(Round(scale[s] / d), 0, 63) : 0;
            m[s] = dmin > 0 ? Math.Clamp(Round(min[s] / dmin), 0, 63) : 0;
        }

        byte* packed = dst + 4;
        for (int j = 0; j < 4; j++)
        {
            packed[j] = (byte)(sc[j] | ((sc[j + 4] >> 4) << 6));
            packed[j + 4] = (byte)(m[j] | ((m[j + 4] >> 4) << 6));
            packed[j + 8] = (byte)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
        }

        byte* q = dst + 16;
        for (int j = 0; j < 256; j += 64, q += 32)
        {
            int s = j / 32;
            for (int l = 0; l < 32; l++)
            {
                int a = Code4(x[j + l], d * sc[s], dmin * m[s]), b = Code4(x[j + 32 + l], d * sc[s + 1], dmin * m[s + 1]);
                q[l] = (byte)(a | (b << 4));
            }
        }
    }

    private static int Code4(float v, float scale, float min) => scale > 0 ? Math.Clamp(Round((v + min) / scale), 0, 15) : 0;

    private static void Q6K(float* x, byte* dst)
    {
        Span<float> scale = stackalloc float[16];
        float maxAbs = 0;
        for (int s = 0; s < 16; s++)
        {
            scale[s] = SignedMax(x + s * 16, 16) / -32f;
            maxAbs = MathF.Max(maxAbs, MathF.Abs(scale[s]));
        }

        float d = (float)(Half)(maxAbs / 127f);
        Span<int> sc = stackalloc int[16];
        var scales = (sbyte*)(dst + 192);
        for (int s = 0; s < 16; s++)
        {
            sc[s] = d > 0 ? Math.Clamp(Round(scale[s] / d), -128, 127) : 0;
            scales[s] = (sbyte)sc[s];
        }

        *(ushort*)(dst + 208) = H(d);
        Span<int> q = stackalloc int[256];
        for (int i = 0; i < 256; i++)
        {
            float step = d * sc[i / 16];
            q[i] = step != 0 ? Math.Clamp(Round(x[i] / step), -32, 31) + 32 : 32;
        }

        byte* ql = dst, qh = dst + 128;
        for (int n = 0; n < 256; n += 128, ql += 64, qh += 32)
        {
            for (int l = 0; l < 32; l++)
            {
                int q1 = q[n + l], q2 = q[n + l + 32], q3 = q[n + l + 64], q4 = q[n + l + 96];
                ql[l] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (byte)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}
