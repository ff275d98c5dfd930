using Loom.Kernels.Cpu.Quant;

namespace Loom.Kernels.Tests;

/// <summary>
/// The vectorised activation rounding against the plain per-element loops it replaced (ggml's
/// rules), code for code, on random rows and on rows built to hit exact ties (x·scale = n + ½),
/// which must round to even as ggml's nearest_int and _mm_round_ps do.
/// </summary>
public unsafe class ActivationQuantTests
{
    [Theory]
    [InlineData("Q8_0", 32, 96, false)]
    [InlineData("Q8_0", 32, 96, true)]
    [InlineData("Q8_K", 16, 512, false)]
    [InlineData("Q8_K", 32, 256, true)]
    public void ActivationQuantRowMatchesTheScalarRules(string schemeName, int group, int k, bool ties)
    {
        var scheme = Enum.Parse<ActivationQuant.Scheme>(schemeName);
        var rng = new Random(k + group);
        var x = new float[k];
        for (int i = 0; i < k; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 4f : 1f);
        if (ties)
        {
            // Each block's max is 127 (so the scale is exactly 1 or −1) and the rest are halves.
            int block = scheme == ActivationQuant.Scheme.Q8_K ? 256 : 32;
            for (int b = 0; b < k; b += block)
                for (int i = b; i < b + block; i++) x[i] = i == b ? 127f : (rng.Next(-120, 120) + 0.5f);
        }

        int groups = k / group, stride = groups + 3;
        var q = new sbyte[k];
        var xs = new float[stride];
        var qsum = Enumerable.Repeat(-1, stride).ToArray();
        fixed (float* px = x, pxs = xs)
        fixed (sbyte* pq = q)
        fixed (int* pqs = qsum)
            ActivationQuant.Row(px, k, k, scheme, group, stride, pq, pxs, pqs);

        var (eq, es) = Reference(x, scheme, group);
        Assert.Equal(eq, q);
        for (int g = 0; g < groups; g++)
        {
            Assert.Equal(es[g], xs[g]);
            int sum = 0;
            for (int i = g * group; i < (g + 1) * group; i++) sum += eq[i];
            Assert.Equal(sum, qsum[g]);
        }

        for (int g = groups; g < stride; g++)
        {
            Assert.Equal(0f, xs[g]);
            Assert.Equal(0, qsum[g]);
        }
        if (ties) Assert.Contains(q, c => c % 2 == 0 && c != 0);
    }

    private static (sbyte[] Q, float[] Scales) Reference(float[] x, ActivationQuant.Scheme scheme, int group)
    {
        var q = new sbyte[x.Length];
        var scales = new float[x.Length / group];
        int block = scheme == ActivationQuant.Scheme.Q8_K ? 256 : 32;
        for (int b = 0; b < x.Length; b += block)
        {
            float d;
            if (scheme == ActivationQuant.Scheme.Q8_K)
            {
                float amax = 0, max = 0;
                for (int i = b; i < b + block; i++)
                    if (MathF.Abs(x[i]) > amax) (amax, max) = (MathF.Abs(x[i]), x[i]);
                float iscale = amax != 0 ? -127f / max : 0f;
                d = amax != 0 ? 1f / iscale : 0f;
                for (int i = b; i < b + block; i++) q[i] = (sbyte)Math.Min((int)MathF.Round(iscale * x[i], MidpointRounding.ToEven), 127);
            }
            else
            {
                float amax = 0;
                for (int i = b; i < b + block; i++) amax = MathF.Max(amax, MathF.Abs(x[i]));
                float id = amax != 0 ? 127f / amax : 0f;
                for (int i = b; i < b + block; i++) q[i] = (sbyte)(int)MathF.Round(x[i] * id, MidpointRounding.ToEven);
                d = (float)(Half)(amax / 127f);
            }

            for (int g = b / group; g < (b + block) / group; g++) scales[g] = d;
        }

        return (q, scales);
    }
}
