using System.Runtime.InteropServices;
using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>Float ↔ F16/BF16/F32 byte conversions for weight files (little-endian hosts only).</summary>
public static class WeightConvert
{
    /// <summary>float → bfloat16 with round-to-nearest-even (what torch does); NaN stays a quiet NaN.</summary>
    public static ushort FloatToBF16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }

    public static float BF16ToFloat(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    /// <summary>Writes <paramref name="src"/> as <paramref name="dtype"/> into <paramref name="dst"/> (size = count × dtype size).</summary>
    public static void Encode(ReadOnlySpan<float> src, DType dtype, Span<byte> dst)
    {
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.AsBytes(src).CopyTo(dst);
                break;
            case DType.F16:
                var h = MemoryMarshal.Cast<byte, Half>(dst);
                for (int i = 0; i < src.Length; i++) h[i] = (Half)src[i]; // IEEE round-to-nearest-even
                break;
            case DType.BF16:
                var b = MemoryMarshal.Cast<byte, ushort>(dst);
                for (int i = 0; i < src.Length; i++) b[i] = FloatToBF16(src[i]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a float weight type");
        }
    }

    public static void Decode(ReadOnlySpan<byte> src, DType dtype, Span<float> dst)
    {
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case DType.F16:
                var h = MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)h[i];
                break;
            case DType.BF16:
                var b = MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = BF16ToFloat(b[i]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a float weight type");
        }
    }
}
