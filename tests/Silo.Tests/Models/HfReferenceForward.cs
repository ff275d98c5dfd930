using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>
/// A deliberately naive double-precision transformers-style forward (one sequence, contiguous
/// causal attention, rotate_half RoPE) written straight from the HF modeling code. It shares no
/// code with LlamaModel or the backends, so it checks what llama.cpp cannot: Qwen3's q/k norm and
/// Llama-3 rope scaling.
/// </summary>
internal sealed unsafe class HfReferenceForward
{
    private readonly ModelConfig _c;
    private readonly ModelWeights _w;
    private readonly double[] _invFreq;

    private HfReferenceForward(ModelConfig c, ModelWeights w)
    {
        _c = c;
        _w = w;
        _invFreq = InverseFrequencies(c);
    }

    /// <summary>Logits [n][vocab] for every position of one sequence.</summary>
    public static double[][] Logits(ModelConfig c, ModelWeights w, int[] tokens) => new HfReferenceForward(c, w).Logits(tokens);

    /// <summary>transformers' _compute_default/linear/llama3_parameters, in double.</summary>
    private static double[] InverseFrequencies(ModelConfig c)
    {
        var inv = new double[c.HeadDim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / c.HeadDim);
        if (c.RopeScaling is { Type: "linear" } lin) for (int i = 0; i < inv.Length; i++) inv[i] /= lin.Factor;
        if (c.RopeScaling is { Type: "llama3" } s)
            for (int i = 0; i < inv.Length; i++)
            {
                double wavelen = 2 * Math.PI / inv[i];
                double low = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor, high = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
                double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                inv[i] = wavelen > low ? inv[i] / s.Factor : wavelen < high ? inv[i] : (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
            }
        return inv;
    }

    private double[] Load(string name)
    {
        var v = _w.Get(name);
        var r = new double[v.ElementCount];
        for (long i = 0; i < r.Length; i++)
            r[i] = v.DType switch
            {
                DType.F32 => ((float*)v.Data)[i],
                DType.F16 => (double)((Half*)v.Data)[i],
                DType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)v.Data)[i] << 16),
                _ => throw new NotSupportedException(v.DType.ToString()),
            };
        return r;
    }

    private static double[] MatVec(double[] w, int outF, int inF, double[] x, double[]? bias = null)
    {
        var y = new double[outF];
        for (int o = 0; o < outF; o++)
        {
            double s = bias?[o] ?? 0;
            for (int i = 0; i < inF; i++) s += w[o * inF + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private double[] Norm(double[] x, int offset, int len, double[] weight)
    {
        double ss = 0;
        for (int i = 0; i < len; i++) ss += x[offset + i] * x[offset + i];
        double inv = 1 / Math.Sqrt(ss / len + _c.RmsNormEps);
        var r = new double[len];
        for (int i = 0; i < len; i++) r[i] = x[offset + i] * inv * weight[i];
        return r;
    }

    private void Rope(double[] x, int heads, int pos)
    {
        int d = _c.HeadDim, half = d / 2;
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
            {
                double a = pos * _invFreq[i], cos = Math.Cos(a), sin = Math.Sin(a);
                double x1 = x[h * d + i], x2 = x[h * d + i + half];
                x[h * d + i] = x1 * cos - x2 * sin;
                x[h * d + i + half] = x2 * cos + x1 * sin;
            }
    }

    private double[][] Logits(int[] tokens)
    {
        var c = _c;
        int n = tokens.Length, h = c.HiddenSize, d = c.HeadDim, hq = c.NumHeads, hk = c.NumKvHeads, f = c.IntermediateSize;
        var embed = Load("model.embed_tokens.weight");
        var hidden = tokens.Select(t => embed.AsSpan(t * h, h).ToArray()).ToArray();
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var inNorm = Load(p + "input_layernorm.weight");
            var postNorm = Load(p + "post_attention_layernorm.weight");
            var wq = Load(p + "self_attn.q_proj.weight");
            var wk = Load(p + "self_attn.k_proj.weight");
            var wv = Load(p + "self_attn.v_proj.weight");
            var wo = Load(p + "self_attn.o_proj.weight");
            double[]? bq = null, bk = null, bv = null, qn = null, kn = null;
            if (c.AttentionBias) { bq = Load(p + "self_attn.q_proj.bias"); bk = Load(p + "self_attn.k_proj.bias"); bv = Load(p + "self_attn.v_proj.bias"); }
            if (c.QkNorm) { qn = Load(p + "self_attn.q_norm.weight"); kn = Load(p + "self_attn.k_norm.weight"); }
            var wg = Load(p + "mlp.gate_proj.weight");
            var wu = Load(p + "mlp.up_proj.weight");
            var wd = Load(p + "mlp.down_proj.weight");

            var qs = new double[n][]; var ks = new double[n][]; var vs = new double[n][];
            for (int t = 0; t < n; t++)
            {
                var x = Norm(hidden[t], 0, h, inNorm);
                qs[t] = MatVec(wq, hq * d, h, x, bq);
                ks[t] = MatVec(wk, hk * d, h, x, bk);
                vs[t] = MatVec(wv, hk * d, h, x, bv);
                if (qn is not null && kn is not null)
                {
                    for (int hh = 0; hh < hq; hh++) Norm(qs[t], hh * d, d, qn).CopyTo(qs[t], hh * d);
                    for (int hh = 0; hh < hk; hh++) Norm(ks[t], hh * d, d, kn).CopyTo(ks[t], hh * d);
                }
                Rope(qs[t], hq, t);
                Rope(ks[t], hk, t);
            }
            for (int t = 0; t < n; t++)
            {
                var attn = new double[hq * d];
                for (int hh = 0; hh < hq; hh++)
                {
                    int kvh = hh / (hq / hk);
                    var scores = new double[t + 1];
                    for (int j = 0; j <= t; j++)
                    {
                        double s = 0;
                        for (int i = 0; i < d; i++) s += qs[t][hh * d + i] * ks[j][kvh * d + i];
                        scores[j] = s / Math.Sqrt(d);
                    }
                    double max = scores.Max(), sum = 0;
                    for (int j = 0; j <= t; j++) { scores[j] = Math.Exp(scores[j] - max); sum += scores[j]; }
                    for (int j = 0; j <= t; j++)
                        for (int i = 0; i < d; i++) attn[hh * d + i] += scores[j] / sum * vs[j][kvh * d + i];
                }
                var o = MatVec(wo, h, hq * d, attn);
                for (int i = 0; i < h; i++) hidden[t][i] += o[i];
                var x = Norm(hidden[t], 0, h, postNorm);
                var g = MatVec(wg, f, h, x);
                var u = MatVec(wu, f, h, x);
                for (int i = 0; i < f; i++) g[i] = g[i] / (1 + Math.Exp(-g[i])) * u[i];
                var down = MatVec(wd, h, f, g);
                for (int i = 0; i < h; i++) hidden[t][i] += down[i];
            }
        }
        var finalNorm = Load("model.norm.weight");
        var head = c.TieWordEmbeddings && !_w.Contains("lm_head.weight") ? embed : Load("lm_head.weight");
        return hidden.Select(x => MatVec(head, c.VocabSize, h, Norm(x, 0, h, finalNorm))).ToArray();
    }
}
