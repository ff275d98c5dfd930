using System.Runtime.CompilerServices;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu;

/// <summary>Row-wise and elementwise fp32 kernels, written once over the ISA's vectors, scalar tails.</summary>
internal static unsafe class ElementwiseKernels<S, V>
    where S : struct, ISimd<V>
    where V : unmanaged
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float SumSquares(float* x, int n)
    {
        int l = S.Lanes;
        V acc0 = S.Zero, acc1 = S.Zero;
        int i = 0;
        for (; i + 2 * l <= n; i += 2 * l)
        {
            var a = S.Load(x + i);
            var b = S.Load(x + i + l);
            acc0 = S.MulAdd(a, a, acc0);
            acc1 = S.MulAdd(b, b, acc1);
        }

        for (; i + l <= n; i += l)
        {
            var a = S.Load(x + i);
            acc0 = S.MulAdd(a, a, acc0);
        }

        float s = S.Sum(S.Add(acc0, acc1));
        for (; i < n; i++) s += x[i] * x[i];
        return s;
    }

    /// <summary>HF LlamaRMSNorm in fp32: (x * rsqrt(mean(x²) + eps)) * w. o may equal x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNormRow(float* x, float* w, float eps, float* o, int n)
    {
        float inv = 1f / MathF.Sqrt(SumSquares(x, n) / n + eps);
        var vinv = S.Splat(inv);
        int i = 0;
        for (; i + S.Lanes <= n; i += S.Lanes)
            S.Store(S.Mul(S.Mul(S.Load(x + i), vinv), S.Load(w + i)), o + i);
        for (; i < n; i++) o[i] = x[i] * inv * w[i];
    }

    /// <summary>r += x, then o = rmsnorm(r). o may equal x (x is fully consumed first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddRmsNormRow(float* x, float* r, float* w, float eps, float* o, int n)
    {
        Add(r, x, r, n);
        RmsNormRow(r, w, eps, o, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(float* a, float* b, float* o, long n)
    {
        long i = 0;
        for (; i + S.Lanes <= n; i += S.Lanes) S.Store(S.Add(S.Load(a + i), S.Load(b + i)), o + i);
        for (; i < n; i++) o[i] = a[i] + b[i];
    }

    /// <summary>o = g / (1 + exp(-g)) * u.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SiluMulRow(float* g, float* u, float* o, int n)
    {
        int i = 0;
        var one = S.Splat(1f);
        for (; i + S.Lanes <= n; i += S.Lanes)
        {
            var gv = S.Load(g + i);
            S.Store(S.Mul(S.Div(gv, S.Add(one, S.Exp(S.Sub(S.Zero, gv)))), S.Load(u + i)), o + i);
        }

        for (; i < n; i++) o[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
    }

    /// <summary>HF rotate_half on one head: pairs (i, i + half) for i &lt; half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RopeHead(float* x, float* cos, float* sin, int half)
    {
        float* y = x + half;
        int i = 0;
        for (; i + S.Lanes <= half; i += S.Lanes)
        {
            var a = S.Load(x + i);
            var b = S.Load(y + i);
            var c = S.Load(cos + i);
            var s = S.Load(sin + i);
            S.Store(S.Sub(S.Mul(a, c), S.Mul(b, s)), x + i);
            S.Store(S.Add(S.Mul(b, c), S.Mul(a, s)), y + i);
        }

        for (; i < half; i++)
        {
            float a = x[i], b = y[i];
            x[i] = a * cos[i] - b * sin[i];
            y[i] = b * cos[i] + a * sin[i];
        }
    }

    /// <summary>Writes n floats as F32 (copy) or BF16 (round-to-nearest-even, vectorised).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
        for (; i + S.Lanes <= n; i += S.Lanes) S.StoreBf16(S.Load(src + i), d + i);
        for (; i < n; i++) d[i] = DTypeConvert.F32ToBf16(src[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToF32(void* src, DType from, float* dst, long n)
    {
        if (from != DType.BF16)
        {
            DTypeConvert.ToF32(src, from, dst, n);
            return;
        }

        var s = (ushort*)src;
        long i = 0;
        for (; i + S.Lanes <= n; i += S.Lanes) S.Store(S.LoadBf16(s + i), dst + i);
        for (; i < n; i++) dst[i] = DTypeConvert.Bf16ToF32(s[i]);
    }
}

/// <summary>Element type conversions off the hot path (weight loading), scalar so they run anywhere.</summary>
public static unsafe class DTypeConvert
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Bf16ToF32(ushort v) => BitConverter.Int32BitsToSingle(v << 16);

    /// <summary>Round-to-nearest-even, NaN kept quiet (what torch's .to(bfloat16) does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFFFFFF) > 0x7F800000) return (ushort)((u >> 16) | 0x40);
        u += 0x7FFF + ((u >> 16) & 1);
        return (ushort)(u >> 16);
    }

    /// <summary>Converts n elements between F32/F16/BF16 (same type = copy).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToF32(void* src, DType from, float* dst, long n)
    {
        switch (from)
        {
            case DType.F32:
                Buffer.MemoryCopy(src, dst, n * 4, n * 4);
                break;
            case DType.BF16:
                for (long i = 0; i < n; i++) dst[i] = Bf16ToF32(((ushort*)src)[i]);
                break;
            case DType.F16:
                for (long i = 0; i < n; i++) dst[i] = (float)((Half*)src)[i];
                break;
            default:
                throw new NotSupportedException($"cannot convert {from} to F32");
        }
    }
}
