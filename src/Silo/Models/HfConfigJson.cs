using System.Text;
using System.Text.Json;
using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// Writes config.json / generation_config.json with the keys transformers itself writes for each
/// architecture, so generated folders look like downloaded ones to any loader, not just ours.
/// </summary>
public static class HfConfigJson
{
    private const string TransformersVersion = "4.45.0";

    public static string TorchDtype(DType dtype) => dtype switch
    {
        DType.F32 => "float32",
        DType.F16 => "float16",
        DType.BF16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a float weight type"),
    };

    public static string Config(ModelPreset p, DType dtype)
    {
        var arch = p.Architecture;
        // Qwen2's config has no head_dim key: transformers derives it as hidden/heads.
        bool writesHeadDim = arch != ModelArchitecture.Qwen2;
        if (!writesHeadDim && p.HeadDim * p.Heads != p.Hidden)
            throw new ArgumentException($"{p.Name}: {p.ArchitectureName} needs head_dim == hidden/heads ({p.Hidden}/{p.Heads})");
        if (p.QkvBias && arch is ModelArchitecture.Mistral or ModelArchitecture.Qwen3)
            throw new ArgumentException($"{p.Name}: {p.ArchitectureName} has no q/k/v bias");
        if (!p.QkvBias && arch == ModelArchitecture.Qwen2)
            throw new ArgumentException($"{p.Name}: Qwen2ForCausalLM always has q/k/v bias");

        return Json(w =>
        {
            w.WriteStartArray("architectures");
            w.WriteStringValue(p.ArchitectureName);
            w.WriteEndArray();
            if (arch is ModelArchitecture.Llama or ModelArchitecture.Qwen3) w.WriteBoolean("attention_bias", p.QkvBias);
            w.WriteNumber("attention_dropout", 0.0);
            w.WriteNumber("bos_token_id", p.BosTokenId);
            w.WriteNumber("eos_token_id", p.EosTokenId);
            if (writesHeadDim) w.WriteNumber("head_dim", p.HeadDim);
            w.WriteString("hidden_act", "silu");
            w.WriteNumber("hidden_size", p.Hidden);
            w.WriteNumber("initializer_range", 0.02);
            w.WriteNumber("intermediate_size", p.Ffn);
            w.WriteNumber("max_position_embeddings", p.MaxPos);
            if (arch is ModelArchitecture.Qwen2 or ModelArchitecture.Qwen3) w.WriteNumber("max_window_layers", p.Layers);
            if (arch == ModelArchitecture.Llama) w.WriteBoolean("mlp_bias", false);
            w.WriteString("model_type", p.ModelType);
            w.WriteNumber("num_attention_heads", p.Heads);
            w.WriteNumber("num_hidden_layers", p.Layers);
            w.WriteNumber("num_key_value_heads", p.KvHeads);
            if (arch == ModelArchitecture.Llama) w.WriteNumber("pretraining_tp", 1);
            w.WriteNumber("rms_norm_eps", p.RmsEps);
            if (arch != ModelArchitecture.Mistral) WriteRopeScaling(w, p.RopeScaling);
            w.WriteNumber("rope_theta", p.RopeTheta);
            if (arch != ModelArchitecture.Llama)
            {
                if (p.SlidingWindow is int sw) w.WriteNumber("sliding_window", sw);
                else w.WriteNull("sliding_window");
            }
            w.WriteBoolean("tie_word_embeddings", p.Tied);
            w.WriteString("torch_dtype", TorchDtype(dtype));
            w.WriteString("transformers_version", TransformersVersion);
            w.WriteBoolean("use_cache", true);
            if (arch is ModelArchitecture.Qwen2 or ModelArchitecture.Qwen3) w.WriteBoolean("use_sliding_window", p.SlidingWindow is not null);
            w.WriteNumber("vocab_size", p.Vocab);
        });
    }

    public static string GenerationConfig(ModelPreset p) => Json(w =>
    {
        w.WriteBoolean("_from_model_config", true);
        w.WriteNumber("bos_token_id", p.BosTokenId);
        w.WriteNumber("eos_token_id", p.EosTokenId);
        w.WriteString("transformers_version", TransformersVersion);
    });

    private static void WriteRopeScaling(Utf8JsonWriter w, RopeScaling? rs)
    {
        if (rs is null) { w.WriteNull("rope_scaling"); return; }
        w.WriteStartObject("rope_scaling");
        w.WriteNumber("factor", rs.Factor);
        if (rs.Type == "llama3")
        {
            w.WriteNumber("high_freq_factor", rs.HighFreqFactor);
            w.WriteNumber("low_freq_factor", rs.LowFreqFactor);
            w.WriteNumber("original_max_position_embeddings", rs.OriginalMaxPositionEmbeddings);
        }
        w.WriteString("rope_type", rs.Type);
        w.WriteEndObject();
    }

    private static string Json(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
