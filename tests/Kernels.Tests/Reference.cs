namespace Loom.Kernels.Tests;

/// <summary>Plain scalar double-precision references for every backend op.</summary>
internal static class Reference
{
    /// <summary>y = x·Wᵀ + b; also returns Σ|x·w| per output, the natural scale of rounding error.</summary>
    public static (float[] Y, double[] Scale) Linear(float[] x, int m, int k, float[] w, int n, float[]? bias)
    {
        var y = new float[m * n];
        var scale = new double[m * n];
        for (int r = 0; r < m; r++)
        {
            for (int c = 0; c < n; c++)
            {
                double s = bias?[c] ?? 0, a = Math.Abs(bias?[c] ?? 0);
                for (int i = 0; i < k; i++)
                {
                    double p = (double)x[r * k + i] * w[c * k + i];
                    s += p;
                    a += Math.Abs(p);
                }

                y[r * n + c] = (float)s;
                scale[r * n + c] = a;
            }
        }

        return (y, scale);
    }

    public static float[] RmsNorm(float[] x, int rows, int cols, float[] w, float eps)
    {
        var o = new float[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double ss = 0;
            for (int c = 0; c < cols; c++) ss += (double)x[r * cols + c] * x[r * cols + c];
            double inv = 1.0 / Math.Sqrt(ss / cols + eps);
            for (int c = 0; c < cols; c++) o[r * cols + c] = (float)(x[r * cols + c] * inv * w[c]);
        }

        return o;
    }

    public static void Rope(float[] x, int rows, int cols, int headDim, int[] positions, float[] invFreq, float scaling)
    {
        int half = invFreq.Length;
        for (int r = 0; r < rows; r++)
        {
            for (int h = 0; h < cols / headDim; h++)
            {
                int b = r * cols + h * headDim;
                for (int i = 0; i < half; i++)
                {
                    float angle = positions[r] * invFreq[i];
                    double cos = Math.Cos(angle) * scaling, sin = Math.Sin(angle) * scaling;
                    double a = x[b + i], c = x[b + i + half];
                    x[b + i] = (float)(a * cos - c * sin);
                    x[b + i + half] = (float)(c * cos + a * sin);
                }
            }
        }
    }

    public static float[] SiluAndMul(float[] gu, int rows, int f)
    {
        var o = new float[rows * f];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < f; i++)
            {
                double g = gu[r * 2 * f + i], u = gu[r * 2 * f + f + i];
                o[r * f + i] = (float)(g / (1 + Math.Exp(-g)) * u);
            }
        }

        return o;
    }

    /// <summary>
    /// Causal GQA attention over explicit per-sequence K/V histories kv[s] = (K[len, kvHeads*d], V[...]).
    /// q is [tokens, heads*d] laid out by queryStart.
    /// </summary>
    public static float[] Attention(float[] q, int[] queryStart, int[] seqLens, List<(float[] K, float[] V)> kv, int heads, int kvHeads, int d, float scale)
    {
        int tokens = queryStart[^1];
        var o = new float[tokens * heads * d];
        int group = heads / kvHeads;
        for (int s = 0; s < seqLens.Length; s++)
        {
            int qlen = queryStart[s + 1] - queryStart[s];
            for (int i = 0; i < qlen; i++)
            {
                int t = queryStart[s] + i;
                int ctx = seqLens[s] - qlen + i + 1;
                for (int h = 0; h < heads; h++)
                {
                    int kh = h / group;
                    var sc = new double[ctx];
                    double max = double.NegativeInfinity;
                    for (int p = 0; p < ctx; p++)
                    {
                        double dot = 0;
                        for (int x = 0; x < d; x++) dot += (double)q[(t * heads + h) * d + x] * kv[s].K[(p * kvHeads + kh) * d + x];
                        sc[p] = dot * scale;
                        max = Math.Max(max, sc[p]);
                    }

                    double sum = 0;
                    for (int p = 0; p < ctx; p++) sum += sc[p] = Math.Exp(sc[p] - max);
                    for (int x = 0; x < d; x++)
                    {
                        double acc = 0;
                        for (int p = 0; p < ctx; p++) acc += sc[p] * kv[s].V[(p * kvHeads + kh) * d + x];
                        o[(t * heads + h) * d + x] = (float)(acc / sum);
                    }
                }
            }
        }

        return o;
    }
}
