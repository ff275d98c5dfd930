namespace Loom.Silo.Models;

/// <summary>
/// The tensor names and shapes transformers uses for the Llama family, derived from a config.
/// Seeded weights and the model generator produce exactly this list; loaders can check against it.
/// </summary>
public static class HfTensorLayout
{
    public static IReadOnlyList<TensorSpec> For(ModelConfig c)
    {
        int h = c.HiddenSize, q = c.NumHeads * c.HeadDim, kv = c.NumKvHeads * c.HeadDim, f = c.IntermediateSize;
        var list = new List<TensorSpec> { new("model.embed_tokens.weight", [c.VocabSize, h], TensorInit.Embedding) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            var p = $"model.layers.{i}.";
            list.Add(new(p + "input_layernorm.weight", [h], TensorInit.Norm));
            list.Add(new(p + "self_attn.q_proj.weight", [q, h], TensorInit.Linear));
            if (c.AttentionBias) list.Add(new(p + "self_attn.q_proj.bias", [q], TensorInit.Bias));
            list.Add(new(p + "self_attn.k_proj.weight", [kv, h], TensorInit.Linear));
            if (c.AttentionBias) list.Add(new(p + "self_attn.k_proj.bias", [kv], TensorInit.Bias));
            list.Add(new(p + "self_attn.v_proj.weight", [kv, h], TensorInit.Linear));
            if (c.AttentionBias) list.Add(new(p + "self_attn.v_proj.bias", [kv], TensorInit.Bias));
            list.Add(new(p + "self_attn.o_proj.weight", [h, q], TensorInit.Linear));
            if (c.QkNorm)
            {
                list.Add(new(p + "self_attn.q_norm.weight", [c.HeadDim], TensorInit.Norm));
                list.Add(new(p + "self_attn.k_norm.weight", [c.HeadDim], TensorInit.Norm));
            }
            list.Add(new(p + "post_attention_layernorm.weight", [h], TensorInit.Norm));
            list.Add(new(p + "mlp.gate_proj.weight", [f, h], TensorInit.Linear));
            list.Add(new(p + "mlp.up_proj.weight", [f, h], TensorInit.Linear));
            list.Add(new(p + "mlp.down_proj.weight", [h, f], TensorInit.Linear));
        }
        list.Add(new("model.norm.weight", [h], TensorInit.Norm));
        if (!c.TieWordEmbeddings) list.Add(new("lm_head.weight", [c.VocabSize, h], TensorInit.Linear));
        return list;
    }
}
