using System.Runtime.CompilerServices;

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
    /// elements) and xsum[g] = xs[g]·Σq over the group, both zero from kpad/group up to groupStride.
    /// Codes stay in [−127, 127], which the I8 kernels' sign trick (negating x) needs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Row(float* x, int k, int kpad, Scheme scheme, int group, int groupStride, sbyte* q, float* xs, float* xsum)
    {
        for (int g = kpad / group; g < groupStride; g++) xs[g] = xsum[g] = 0f;
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

                for (int i = b; i < b + 256; i++) q[i] = (sbyte)Math.Min((int)MathF.Round(iscale * x[i]), 127);
                for (int g0 = b; g0 < b + 256; g0 += group) xs[g0 / group] = d;
            }
        }
        else
        {
            for (int b = 0; b < k; b += 32)
            {
                float amax = 0;
                for (int i = b; i < b + 32; i++) amax = MathF.Max(amax, MathF.Abs(x[i]));
                float id = amax != 0 ? 127f / amax : 0f;
                for (int i = b; i < b + 32; i++) q[i] = (sbyte)(int)MathF.Round(x[i] * id);
                float d = (float)(Half)(amax / 127f);
                for (int g0 = b; g0 < b + 32; g0 += group) xs[g0 / group] = d;
            }
        }

        for (int g0 = 0; g0 < kpad; g0 += group)
        {
            int sum = 0;
            for (int i = g0; i < g0 + group; i++) sum += q[i];
            xsum[g0 / group] = xs[g0 / group] * sum;
        }
    }
}
