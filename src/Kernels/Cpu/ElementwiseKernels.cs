using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu;

/// <summary>Row-wise and elementwise fp32 kernels, Vector512 bodies with scalar tails.</summary>
internal static unsafe class ElementwiseKernels
{
    public static float SumSquares(float* x, int n)
    {
        var acc0 = Vector512<float>.Zero;
        var acc1 = Vector512<float>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            var a = Vector512.Load(x + i);
            var b = Vector512.Load(x + i + 16);
            acc0 += a * a;
            acc1 += b * b;
        }

        for (; i + 16 <= n; i += 16)
        {
            var a = Vector512.Load(x + i);
            acc0 += a * a;
        }

        float s = Vector512.Sum(acc0 + acc1);
        for (; i < n; i++) s += x[i] * x[i];
        return s;
    }

    /// <summary>HF LlamaRMSNorm in fp32: (x * rsqrt(mean(x²) + eps)) * w. o may equal x.</summary>
    public static void RmsNormRow(float* x, float* w, float eps, float* o, int n)
    {
        float inv = 1f / MathF.Sqrt(SumSquares(x, n) / n + eps);
        var vinv = Vector512.Create(inv);
        int i = 0;
        for (; i + 16 <= n; i += 16)
            (Vector512.Load(x + i) * vinv * Vector512.Load(w + i)).Store(o + i);
        for (; i < n; i++) o[i] = x[i] * inv * w[i];
    }

    /// <summary>r += x, then o = rmsnorm(r). o may equal x (x is fully consumed first).</summary>
    public static void AddRmsNormRow(float* x, float* r, float* w, float eps, float* o, int n)
    {
        Add(r, x, r, n);
        RmsNormRow(r, w, eps, o, n);
    }

    public static void Add(float* a, float* b, float* o, long n)
    {
        long i = 0;
        for (; i + 16 <= n; i += 16) (Vector512.Load(a + i) + Vector512.Load(b + i)).Store(o + i);
        for (; i < n; i++) o[i] = a[i] + b[i];
    }

    /// <summary>o = g / (1 + exp(-g)) * u.</summary>
    public static void SiluMulRow(float* g, float* u, float* o, int n)
    {
        int i = 0;
        var one = Vector512<float>.One;
        for (; i + 16 <= n; i += 16)
        {
            var gv = Vector512.Load(g + i);
            (gv / (one + VectorMath.Exp(-gv)) * Vector512.Load(u + i)).Store(o + i);
        }

        for (; i < n; i++) o[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
    }

    /// <summary>HF rotate_half on one head: pairs (i, i + half) for i &lt; half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RopeHead(float* x, float* cos, float* sin, int half)
    {
        float* y = x + half;
        int i = 0;
        for (; i + 16 <= half; i += 16)
        {
            var a = Vector512.Load(x + i);
            var b = Vector512.Load(y + i);
            var c = Vector512.Load(cos + i);
            var s = Vector512.Load(sin + i);
            (a * c - b * s).Store(x + i);
            (b * c + a * s).Store(y + i);
        }

        for (; i < half; i++)
        {
            float a = x[i], b = y[i];
            x[i] = a * cos[i] - b * sin[i];
            y[i] = b * cos[i] + a * sin[i];
        }
    }

    public static float Bf16ToF32(ushort v) => BitConverter.Int32BitsToSingle(v << 16);

    /// <summary>Round-to-nearest-even, NaN kept quiet (what torch's .to(bfloat16) does).</summary>
    public static ushort F32ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFFFFFF) > 0x7F800000) return (ushort)((u >> 16) | 0x40);
        u += 0x7FFF + ((u >> 16) & 1);
        return (ushort)(u >> 16);
    }

    /// <summary>Converts n elements between F32/F16/BF16 (same type = copy).</summary>
    public static void Convert(void* src, DType from, void* dst, DType to, long n)
    {
        if (from == to)
        {
            Buffer.MemoryCopy(src, dst, n * to.Size(), n * to.Size());
            return;
        }

        if (to == DType.F32)
        {
            ToF32(src, from, (float*)dst, n);
            return;
        }

        for (long i = 0; i < n; i++)
        {
            float f = from switch
            {
                DType.F32 => ((float*)src)[i],
                DType.F16 => (float)((Half*)src)[i],
                DType.BF16 => Bf16ToF32(((ushort*)src)[i]),
                _ => throw new NotSupportedException($"cannot convert {from} to {to}"),
            };
            switch (to)
            {
                case DType.F16: ((Half*)dst)[i] = (Half)f; break;
                case DType.BF16: ((ushort*)dst)[i] = F32ToBf16(f); break;
                default: throw new NotSupportedException($"cannot convert {from} to {to}");
            }
        }
    }

    /// <summary>Writes n floats as F32 (copy) or BF16 (round-to-nearest-even, vectorised).</summary>
    public static void FromF32(float* src, void* dst, DType to, int n)
    {
        if (to == DType.F32)
        {
            Buffer.MemoryCopy(src, dst, n * 4L, n * 4L);
            return;
        }

        if (to != DType.BF16) throw new NotSupportedException($"cannot store {to}");
        var d = (ushort*)dst;
        int i = 0;
        var bias = Vector512.Create(0x7FFFu);
        var one = Vector512.Create(1u);
        for (; i + 16 <= n; i += 16)
        {
            var u = Vector512.Load((uint*)(src + i));
            var r = (u + bias + ((u >> 16) & one)) >> 16;
            Avx512F.ConvertToVector256UInt16(r).Store(d + i);
        }

        for (; i < n; i++) d[i] = F32ToBf16(src[i]);
    }

    public static void ToF32(void* src, DType from, float* dst, long n)
    {
        switch (from)
        {
            case DType.F32:
                Buffer.MemoryCopy(src, dst, n * 4, n * 4);
                break;
            case DType.BF16:
                {
                    var s = (ushort*)src;
                    long i = 0;
                    for (; i + 16 <= n; i += 16)
                        Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load(s + i).ToVector512()), 16).AsSingle().Store(dst + i);
                    for (; i < n; i++) dst[i] = Bf16ToF32(s[i]);
                    break;
                }

            case DType.F16:
                {
                    var s = (Half*)src;
                    for (long i = 0; i < n; i++) dst[i] = (float)s[i];
                    break;
                }

            default:
                throw new NotSupportedException($"cannot convert {from} to F32");
        }
    }
}
