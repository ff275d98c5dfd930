using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>One decoder layer's weights on a backend, with q/k/v and gate/up fused for fewer, longer GEMMs.</summary>
internal sealed class LlamaLayer : IDisposable
{
    public required Tensor InputNorm { get; init; }
    public required Tensor PostAttentionNorm { get; init; }
    public required LinearWeight Qkv { get; init; }
    public Tensor? QkvBias { get; init; }
    public Tensor? QNorm { get; init; }
    public Tensor? KNorm { get; init; }
    public required LinearWeight O { get; init; }
    public required LinearWeight GateUp { get; init; }
    public required LinearWeight Down { get; init; }

    public long LinearBytes => Qkv.ByteLength + O.ByteLength + GateUp.ByteLength + Down.ByteLength;

    public static LlamaLayer Load(IBackend backend, IWeights w, ModelConfig c, int i)
    {
        string p = $"model.layers.{i}.";
        int h = c.HiddenSize, qDim = c.NumHeads * c.HeadDim, kvDim = c.NumKvHeads * c.HeadDim, f = c.IntermediateSize;
        return new LlamaLayer
        {
            InputNorm = backend.Upload(w.Get(p + "input_layernorm.weight", h), DType.F32),
            PostAttentionNorm = backend.Upload(w.Get(p + "post_attention_layernorm.weight", h), DType.F32),
            Qkv = backend.PrepareLinear([
                w.Get(p + "self_attn.q_proj.weight", qDim, h),
                w.Get(p + "self_attn.k_proj.weight", kvDim, h),
                w.Get(p + "self_attn.v_proj.weight", kvDim, h)]),
            QkvBias = c.AttentionBias
                ? ConcatF32(backend, [
                    w.Get(p + "self_attn.q_proj.bias", qDim),
                    w.Get(p + "self_attn.k_proj.bias", kvDim),
                    w.Get(p + "self_attn.v_proj.bias", kvDim)])
                : null,
            QNorm = c.QkNorm ? backend.Upload(w.Get(p + "self_attn.q_norm.weight", c.HeadDim), DType.F32) : null,
            KNorm = c.QkNorm ? backend.Upload(w.Get(p + "self_attn.k_norm.weight", c.HeadDim), DType.F32) : null,
            O = backend.PrepareLinear([w.Get(p + "self_attn.o_proj.weight", h, qDim)]),
            GateUp = backend.PrepareLinear([
                w.Get(p + "mlp.gate_proj.weight", f, h),
                w.Get(p + "mlp.up_proj.weight", f, h)]),
            Down = backend.PrepareLinear([w.Get(p + "mlp.down_proj.weight", h, f)]),
        };
    }

    private static Tensor ConcatF32(IBackend backend, WeightView[] parts)
    {
        int n = 0;
        foreach (var part in parts) n += (int)part.ElementCount;
        var host = new float[n];
        int at = 0;
        foreach (var part in parts)
        {
            WeightConvert.Decode(part.Bytes(), part.DType, host.AsSpan(at, (int)part.ElementCount));
            at += (int)part.ElementCount;
        }
        var t = backend.Allocate(DType.F32, n);
        backend.CopyFromHost(host, t);
        return t;
    }

    public void Dispose()
    {
        InputNorm.Dispose();
        PostAttentionNorm.Dispose();
        Qkv.Dispose();
        QkvBias?.Dispose();
        QNorm?.Dispose();
        KNorm?.Dispose();
        O.Dispose();
        GateUp.Dispose();
        Down.Dispose();
    }
}
