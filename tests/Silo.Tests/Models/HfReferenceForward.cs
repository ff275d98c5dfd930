using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>
/// A plain double-precision transcription of transformers' Llama/Qwen2/Qwen3 forward pass
/// (rotate-half RoPE on HF weights), used to prove the GGUF export carries the same weights.
/// Slow and simple on purpose; tiny models only.
/// </summary>
internal static unsafe class HfReferenceForward
{
    public static double[][] Logits(ModelConfig c, ModelWeights w, int[] tokens)
    {
        if (c.RopeScaling is not null) throw new NotSupportedException("reference forward has no rope scaling");
        int T = tokens.Length, h = c.HiddenSize, d = c.HeadDim, nh = c.NumHeads, nkv = c.NumKvHeads;
        double[] Load(string name)
        {
            var v = w.Get(name);
            var f = new float[v.ElementCount];
            WeightConvert.Decode(new ReadOnlySpan<byte>((void*)v.Data, (int)v.ByteLength), v.DType, f);
            return f.Select(x => (double)x).ToArray();
        }

        var embed = Load("model.embed_tokens.weight");
        var x = new double[T][];
        for (int t = 0; t < T; t++) x[t] = embed.AsSpan(tokens[t] * h, h).ToArray();

        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var wq = Load(p + "self_attn.q_proj.weight");
            var wk = Load(p + "self_attn.k_proj.weight");
            var wv = Load(p + "self_attn.v_proj.weight");
            var wo = Load(p + "self_attn.o_proj.weight");
            var q = new double[T][];
            var k = new double[T][];
            var v = new double[T][];
            for (int t = 0; t < T; t++)
            {
                var xn = RmsNorm(x[t], Load(p + "input_layernorm.weight"), c.RmsNormEps);
                q[t] = MatVec(wq, xn, nh * d);
                k[t] = MatVec(wk, xn, nkv * d);
                v[t] = MatVec(wv, xn, nkv * d);
                if (c.AttentionBias)
                {
                    Add(q[t], Load(p + "self_attn.q_proj.bias"));
                    Add(k[t], Load(p + "self_attn.k_proj.bias"));
                    Add(v[t], Load(p + "self_attn.v_proj.bias"));
                }
                if (c.QkNorm)
                {
                    PerHeadNorm(q[t], Load(p + "self_attn.q_norm.weight"), d, c.RmsNormEps);
                    PerHeadNorm(k[t], Load(p + "self_attn.k_norm.weight"), d, c.RmsNormEps);
                }
                RotateHalf(q[t], d, t, c.RopeTheta);
                RotateHalf(k[t], d, t, c.RopeTheta);
            }
            for (int t = 0; t < T; t++)
            {
                var attn = new double[nh * d];
                for (int head = 0; head < nh; head++)
                {
                    int kvh = head / (nh / nkv);
                    var s = new double[t + 1];
                    for (int u = 0; u <= t; u++)
                    {
                        double dot = 0;
                        for (int i = 0; i < d; i++) dot += q[t][head * d + i] * k[u][kvh * d + i];
                        s[u] = dot / Math.Sqrt(d);
                    }
                    double max = s.Max(), sum = 0;
                    for (int u = 0; u <= t; u++) { s[u] = Math.Exp(s[u] - max); sum += s[u]; }
                    for (int u = 0; u <= t; u++)
                        for (int i = 0; i < d; i++) attn[head * d + i] += s[u] / sum * v[u][kvh * d + i];
                }
                Add(x[t], MatVec(wo, attn, h));
            }
            var wg = Load(p + "mlp.gate_proj.weight");
            var wu = Load(p + "mlp.up_proj.weight");
            var wd = Load(p + "mlp.down_proj.weight");
            for (int t = 0; t < T; t++)
            {
                var xn = RmsNorm(x[t], Load(p + "post_attention_layernorm.weight"), c.RmsNormEps);
                var g = MatVec(wg, xn, c.IntermediateSize);
                var up = MatVec(wu, xn, c.IntermediateSize);
                for (int i = 0; i < g.Length; i++) g[i] = g[i] / (1 + Math.Exp(-g[i])) * up[i];
                Add(x[t], MatVec(wd, g, h));
            }
        }
        var head0 = c.TieWordEmbeddings ? embed : Load("lm_head.weight");
        var norm = Load("model.norm.weight");
        return x.Select(xt => MatVec(head0, RmsNorm(xt, norm, c.RmsNormEps), c.VocabSize)).ToArray();
    }

    private static double[] MatVec(double[] m, double[] x, int rows)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int i = 0; i < x.Length; i++) s += m[r * x.Length + i] * x[i];
            y[r] = s;
        }
        return y;
    }

    private static void Add(double[] a, double[] b)
    {
        for (int i = 0; i < a.Length; i++) a[i] += b[i];
    }

    private static double[] RmsNorm(double[] x, double[] w, double eps)
    {
        double ms = x.Sum(v => v * v) / x.Length;
        double r = 1 / Math.Sqrt(ms + eps);
        return x.Select((v, i) => v * r * w[i]).ToArray();
    }

    private static void PerHeadNorm(double[] x, double[] w, int d, double eps)
    {
        for (int o = 0; o < x.Length; o += d)
        {
            var n = RmsNorm(x.AsSpan(o, d).ToArray(), w, eps);
            n.CopyTo(x, o);
        }
    }

    /// <summary>HF apply_rotary_pos_emb: pairs (i, i + d/2) rotate by pos * theta^(-2i/d).</summary>
    private static void RotateHalf(double[] x, int d, int pos, double theta)
    {
        for (int o = 0; o < x.Length; o += d)
            for (int i = 0; i < d / 2; i++)
            {
                double a = pos * Math.Pow(theta, -2.0 * i / d);
                double x0 = x[o + i], x1 = x[o + i + d / 2];
                x[o + i] = x0 * Math.Cos(a) - x1 * Math.Sin(a);
                x[o + i + d / 2] = x1 * Math.Cos(a) + x0 * Math.Sin(a);
            }
    }
}
