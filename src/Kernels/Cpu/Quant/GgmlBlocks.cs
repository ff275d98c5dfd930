// Written here: no NuGet package reads or writes ggml's quantized blocks (GGUF readers on NuGet wrap native llama.cpp).
namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// ggml's block formats, decoded exactly as llama.cpp decodes them (ggml-common.h / ggml-quants.c):
/// the scalar reference every quantized kernel is tested against, and what the GPU path uses to
/// widen GGUF weights to bf16 at load.
/// </summary>
public static unsafe class GgmlBlocks
{
    /// <summary>fp16 bits to fp32.</summary>
    public static float Half(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Decodes <paramref name="k"/> elements (a whole number of blocks) of <paramref name="type"/> at <paramref name="src"/>.</summary>
    public static void DequantizeRow(DType type, byte* src, float* dst, int k)
    {
        int be = type.BlockElements();
        if (k % be != 0) throw new ArgumentException($"{k} elements are not a whole number of {type} blocks of {be}");
        int nb = k / be;
        switch (type)
        {
            case DType.Q8_0:
                for (int b = 0; b < nb; b++, src += 34, dst += 32)
                {
                    float d = Half(*(ushort*)src);
                    var q = (sbyte*)(src + 2);
                    for (int i = 0; i < 32; i++) dst[i] = q[i] * d;
                }
                break;
            case DType.Q4_0:
                for (int b = 0; b < nb; b++, src += 18, dst += 32)
                {
                    float d = Half(*(ushort*)src);
                    byte* q = src + 2;
                    for (int i = 0; i < 16; i++)
                    {
                        dst[i] = ((q[i] & 0xF) - 8) * d;
                        dst[i + 16] = ((q[i] >> 4) - 8) * d;
                    }
                }
                break;
            case DType.Q5_0:
                for (int b = 0; b < nb; b++, src += 22, dst += 32)
                {
                    float d = Half(*(ushort*)src);
                    for (int i = 0; i < 32; i++) dst[i] = Q5(src, i) * d;
                }
                break;
            case DType.Q4_K:
                for (int b = 0; b < nb; b++, src += 144, dst += 256) DequantizeQ4K(src, dst);
                break;
            case DType.Q6_K:
                for (int b = 0; b < nb; b++, src += 210, dst += 256) DequantizeQ6K(src, dst);
                break;
            default:
                throw new NotSupportedException($"{type} is not a quantized type");
        }
    }

    /// <summary>
    /// The signed value (−16..15) of element i of a Q5_0 block (fp16 d, 32 high bits, 16 nibble bytes):
    /// elements 0..15 take the low nibbles, 16..31 the high ones, and bit i of the high bits is their bit 4.
    /// </summary>
    public static int Q5(byte* blk, int i)
    {
        uint qh = *(uint*)(blk + 2);
        byte q = blk[6 + (i & 15)];
        int low = i < 16 ? q & 0xF : q >> 4;
        return (low | (int)((qh >> i) & 1) << 4) - 16;
    }

    /// <summary>Sub-block j's 6-bit scale and min from the 12 packed bytes of a Q4_K super-block.</summary>
    public static void ScaleMinK4(int j, byte* q, out int scale, out int min)
    {
        if (j < 4)
        {
            scale = q[j] & 63;
            min = q[j + 4] & 63;
        }
        else
        {
            scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>
    /// One Q4_K super-block (d, dmin, 12 scale bytes, 128 nibble bytes): each 64 elements take the
    /// low then the high nibbles of 32 bytes, sub-block s at value d·sc_s·q − dmin·m_s.
    /// </summary>
    public static void DequantizeQ4K(byte* blk, float* y)
    {
        float d = Half(*(ushort*)blk), dmin = Half(*(ushort*)(blk + 2));
        byte* scales = blk + 4, q = blk + 16;
        for (int j = 0, s = 0; j < 256; j += 64, s += 2, q += 32)
        {
            ScaleMinK4(s, scales, out int sc1, out int m1);
            ScaleMinK4(s + 1, scales, out int sc2, out int m2);
            float d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2;
            for (int l = 0; l < 32; l++) y[j + l] = d1 * (q[l] & 0xF) - min1;
            for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (q[l] >> 4) - min2;
        }
    }

    /// <summary>
    /// One Q6_K super-block (ql[128], qh[64], int8 scales[16], d): element e of each 128-half has
    /// 6-bit value q − 32 and scale d·scales[e/16].
    /// </summary>
    public static void DequantizeQ6K(byte* blk, float* y)
    {
        byte* ql = blk, qh = blk + 128;
        var sc = (sbyte*)(blk + 192);
        float d = Half(*(ushort*)(blk + 208));
        for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8, y += 128)
        {
            for (int l = 0; l < 32; l++)
            {
                int s = l / 16;
                y[l] = d * sc[s] * Q6(ql, qh, l, 0);
                y[l + 32] = d * sc[s + 2] * Q6(ql, qh, l, 1);
                y[l + 64] = d * sc[s + 4] * Q6(ql, qh, l, 2);
                y[l + 96] = d * sc[s + 6] * Q6(ql, qh, l, 3);
            }
        }
    }

    /// <summary>The signed 6-bit value (−32..31) of element l + 32·quarter of a Q6_K 128-half.</summary>
    public static int Q6(byte* ql, byte* qh, int l, int quarter)
    {
        int low = quarter switch
        {
            0 => ql[l] & 0xF,
            1 => ql[l + 32] & 0xF,
            2 => ql[l] >> 4,
            _ => ql[l + 32] >> 4,
        };
        return (low | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
    }
}
