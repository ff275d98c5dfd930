using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// Activations rounded to int8 exactly as ggml rounds them before its vec_dot, so Loom's integer
/// dot products are llama.cpp's and only float summation order differs:
/// <list type="bullet">
/// <item>Q8_0 blocks (for Q8_0 and Q4_0 weights): per 32, d = fp16(max|x| / 127), q = round(x · 127 / max|x|).</item>
/// <item>Q8_K super-blocks (for Q4_K and Q6_K weights): per 256, with m the value of largest |x|,
/// q = min(127, round(−127 / m · x)), d = m / −127 in fp32.</item>
/// </list>
/// Rounding is to nearest, ties to even (ggml's nearest_int and _mm_round_ps). The per-group scale
/// array repeats a super-block's d for each of its weight groups (16 or 32 elements).
/// </summary>
internal static unsafe class ActivationQuant
{
    public enum Scheme
    {
        None,
        Q8_0,
        Q8_K,
    }

    public static Scheme SchemeFor(DType weights) => weights is DType.Q4_K or DType.Q6_K ? Scheme.Q8_K : Scheme.Q8_0;

    /// <summary>
    /// x[0..k) → q[0..kpad) (zero-padded), xs[g] = the scale of group g (of <paramref name="group"/>
    /// elements) and qsum[g] = Σq over the group (ggml's bsums: the Q4_K kernel multiplies them by its
    /// integer mins, Q4_0's and Q6_K's by their code offsets), both zero from kpad/group up to groupStride.
    /// Codes stay in [−127, 127], which the I8 kernels' sign trick (negating x) needs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Row(float* x, int k, int kpad, Scheme scheme, int group, int groupStride, sbyte* q, float* xs, int* qsum)
    {
        for (int g = kpad / group; g < groupStride; g++)
        {
            xs[g] = 0f;
            qsum[g] = 0;
        }

        for (int i = k; i < kpad; i++) q[i] = 0;
        if (scheme == Scheme.Q8_K)
        {
            for (int b = 0; b < k; b += 256)
            {
                float amax = 0, max = 0;
                for (int i = b; i < b + 256; i++)
                {
                    float a = MathF.Abs(x[i]);
                    if (a > amax)
                    {
                        amax = a;
                        max = x[i];
                    }
                }

                float d = 0, iscale = 0;
                if (amax != 0)
                {
                    iscale = -127f / max;
                    d = 1f / iscale;
                }

                RoundBlock(x + b, 256, iscale, q + b);
                for (int g0 = b; g0 < b + 256; g0 += group) xs[g0 / group] = d;
            }
        }
        else
        {
            for (int b = 0; b < k; b += 32)
            {
                float amax = AbsMax32(x + b);
                float id = amax != 0 ? 127f / amax : 0f;
                RoundBlock(x + b, 32, id, q + b);
                float d = (float)(Half)(amax / 127f);
                for (int g0 = b; g0 < b + 32; g0 += group) xs[g0 / group] = d;
            }
        }

        for (int g0 = 0, g = 0; g0 < kpad; g0 += group, g++)
        {
            int sum = 0;
            for (int i = g0; i < g0 + group; i++) sum += q[i];
            qsum[g] = sum;
        }
    }

    /// <summary>
    /// dst = q·scale per group: a row exactly as <see cref="Row"/> rounded it, which the
    /// decoded-panel GEMM multiplies. Vectorised by group (16 or 32 codes): a per-element division by
    /// the group size was a tenth of a batch-64 decode step.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(sbyte* q, float* xs, int k, int group, float* dst)
    {
        for (int g = 0, i = 0; i < k; g++)
        {
            float s = xs[g];
            int end = Math.Min(k, i + group);
            if (Vector128.IsHardwareAccelerated)
            {
                var sv = Vector128.Create(s);
                for (; i + 16 <= end; i += 16)
                {
                    var b = Vector128.Load(q + i);
                    var lo = Vector128.WidenLower(b);
                    var hi = Vector128.WidenUpper(b);
                    (Vector128.ConvertToSingle(Vector128.WidenLower(lo)) * sv).Store(dst + i);
                    (Vector128.ConvertToSingle(Vector128.WidenUpper(lo)) * sv).Store(dst + i + 4);
                    (Vector128.ConvertToSingle(Vector128.WidenLower(hi)) * sv).Store(dst + i + 8);
                    (Vector128.ConvertToSingle(Vector128.WidenUpper(hi)) * sv).Store(dst + i + 12);
                }
            }

            for (; i < end; i++) dst[i] = q[i] * s;
        }
    }

    private static float AbsMax32(float* x)
    {
        if (!Vector128.IsHardwareAccelerated)
        {
            float m = 0;
            for (int i = 0; i < 32; i++) m = MathF.Max(m, MathF.Abs(x[i]));
            return m;
        }

        var a = Vector128.Max(Vector128.Max(Vector128.Abs(Vector128.Load(x)), Vector128.Abs(Vector128.Load(x + 4))),
            Vector128.Max(Vector128.Abs(Vector128.Load(x + 8)), Vector128.Abs(Vector128.Load(x + 12))));
        var b = Vector128.Max(Vector128.Max(Vector128.Abs(Vector128.Load(x + 16)), Vector128.Abs(Vector128.Load(x + 20))),
            Vector128.Max(Vector128.Abs(Vector128.Load(x + 24)), Vector128.Abs(Vector128.Load(x + 28))));
        a = Vector128.Max(a, b);
        return MathF.Max(MathF.Max(a[0], a[1]), MathF.Max(a[2], a[3]));
    }

    /// <summary>
    /// q[i] = min(127, round(x[i]·scale)), ties to even like the scalar MathF.Round (and ggml), 16 at a
    /// time: the scalar loop was most of a prefill's activation rounding.
    /// </summary>
    private static void RoundBlock(float* x, int n, float scale, sbyte* q)
    {
        int i = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            var s = Vector128.Create(scale);
            var top = Vector128.Create(127);
            for (; i + 16 <= n; i += 16)
            {
                var a = Vector128.Min(Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(x + i) * s)), top);
                var b = Vector128.Min(Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(x + i + 4) * s)), top);
                var c = Vector128.Min(Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(x + i + 8) * s)), top);
                var d = Vector128.Min(Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(x + i + 12) * s)), top);
                Vector128.Narrow(Vector128.Narrow(a, b), Vector128.Narrow(c, d)).Store(q + i);
            }
        }

        for (; i < n; i++) q[i] = (sbyte)Math.Min((int)MathF.Round(x[i] * scale), 127);
    }
}
