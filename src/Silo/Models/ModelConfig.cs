using System.Text.Json;

namespace Loom.Silo.Models;

/// <summary>The families one <see cref="LlamaModel"/> serves; they differ only in the switches below.</summary>
public enum ModelArchitecture
{
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
}

/// <summary>rope_scaling from config.json; Type is "default", "linear" or "llama3".</summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192);

/// <summary>A Hugging Face config.json (plus generation_config.json), validated.</summary>
public sealed record ModelConfig
{
    public required ModelArchitecture Architecture { get; init; }
    public required string ArchitectureName { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public required double RmsNormEps { get; init; }
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>
    /// Per-pair divisors of the rotary inverse frequencies (head_dim / 2 of them), as a GGUF file's
    /// <c>rope_freqs.weight</c> carries Llama 3.1+'s rope scaling (llama.cpp: θ_i = p·base^(−2i/d) / factor_i);
    /// null for Hugging Face folders, whose <see cref="RopeScaling"/> says the same in parameters.
    /// </summary>
    public IReadOnlyList<float>? RopeFreqFactors { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public bool TieWordEmbeddings { get; init; }

    /// <summary>q/k/v projections carry a bias (Qwen2 always; Llama when attention_bias is set).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Per-head RMSNorm of q and k before RoPE (Qwen3).</summary>
    public bool QkNorm { get; init; }

    public int? SlidingWindow { get; init; }
    public string TorchDtype { get; init; } = "float32";
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    public static readonly IReadOnlyDictionary<string, ModelArchitecture> KnownArchitectures =
        new Dictionary<string, ModelArchitecture>
        {
            ["LlamaForCausalLM"] = ModelArchitecture.Llama,
            ["MistralForCausalLM"] = ModelArchitecture.Mistral,
            ["Qwen2ForCausalLM"] = ModelArchitecture.Qwen2,
            ["Qwen3ForCausalLM"] = ModelArchitecture.Qwen3,
        };

    /// <summary>Reads config.json and, if present, generation_config.json from a model folder.</summary>
    public static ModelConfig Load(string modelDir)
    {
        var path = Path.Combine(modelDir, "config.json");
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: not found (a Hugging Face model folder needs config.json)");
        var config = Parse(File.ReadAllText(path), path);
        var genPath = Path.Combine(modelDir, "generation_config.json");
        return File.Exists(genPath) ? config.WithGenerationConfig(File.ReadAllText(genPath), genPath) : config;
    }

    public static ModelConfig Parse(string json, string file = "config.json")
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new ModelLoadException($"{file}: not valid JSON ({e.Message})", e); }
        using var _ = doc;
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{file}: expected a JSON object");

        var arch = ReadArchitecture(root, file);
        int hidden = RequiredInt(root, "hidden_size", file);
        int heads = RequiredInt(root, "num_attention_heads", file);
        int kvHeads = OptionalInt(root, "num_key_value_heads", file) ?? heads;
        int headDim = OptionalInt(root, "head_dim", file) ?? (hidden % heads == 0 ? hidden / heads
            : throw new ModelLoadException($"{file}: hidden_size {hidden} is not divisible by num_attention_heads {heads} and head_dim is missing"));
        if (heads % kvHeads != 0)
            throw new ModelLoadException($"{file}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        if (headDim % 2 != 0) throw new ModelLoadException($"{file}: head_dim {headDim} must be even for rotary embeddings");

        var kind = ModelConfig.KnownArchitectures[arch];
        return new ModelConfig
        {
            Architecture = kind,
            ArchitectureName = arch,
            HiddenSize = hidden,
            IntermediateSize = RequiredInt(root, "intermediate_size", file),
            NumLayers = RequiredInt(root, "num_hidden_layers", file),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = RequiredInt(root, "vocab_size", file),
            RmsNormEps = RequiredDouble(root, "rms_norm_eps", file),
            RopeTheta = OptionalDouble(root, "rope_theta", file) ?? 10000.0,
            RopeScaling = ReadRopeScaling(root, file),
            MaxPositionEmbeddings = OptionalInt(root, "max_position_embeddings", file) ?? 2048,
            TieWordEmbeddings = OptionalBool(root, "tie_word_embeddings", file) ?? false,
            AttentionBias = kind == ModelArchitecture.Qwen2 || (OptionalBool(root, "attention_bias", file) ?? false),
            QkNorm = kind == ModelArchitecture.Qwen3,
            SlidingWindow = root.TryGetProperty("use_sliding_window", out var usw) && usw.ValueKind == JsonValueKind.False
                ? null : OptionalInt(root, "sliding_window", file),
            TorchDtype = root.TryGetProperty("torch_dtype", out var td) && td.ValueKind == JsonValueKind.String ? td.GetString()! : "float32",
            BosTokenId = OptionalInt(root, "bos_token_id", file),
            EosTokenIds = ReadIds(root, "eos_token_id", file),
        };
    }

    /// <summary>generation_config.json overrides bos/eos ids, as transformers does.</summary>
    public ModelConfig WithGenerationConfig(string json, string file = "generation_config.json")
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            var eos = ReadIds(root, "eos_token_id", file);
            return this with
            {
                BosTokenId = OptionalInt(root, "bos_token_id", file) ?? BosTokenId,
                EosTokenIds = eos.Count > 0 ? eos : EosTokenIds,
            };
        }
        catch (JsonException e) { throw new ModelLoadException($"{file}: not valid JSON ({e.Message})", e); }
    }

    private static string ReadArchitecture(JsonElement root, string file)
    {
        if (!root.TryGetProperty("architectures", out var archs) || archs.ValueKind != JsonValueKind.Array || archs.GetArrayLength() == 0)
            throw new ModelLoadException($"{file}: missing field 'architectures'");
        var arch = archs[0].GetString() ?? "";
        if (!KnownArchitectures.ContainsKey(arch))
            throw new ModelLoadException($"{file}: unsupported architecture '{arch}' in field 'architectures' (supported: {string.Join(", ", KnownArchitectures.Keys)})");
        return arch;
    }

    private static RopeScaling? ReadRopeScaling(JsonElement root, string file)
    {
        if (!root.TryGetProperty("rope_scaling", out var rs) || rs.ValueKind == JsonValueKind.Null) return null;
        if (rs.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{file}: field 'rope_scaling' must be an object or null");
        string? type = rs.TryGetProperty("rope_type", out var t) ? t.GetString() : rs.TryGetProperty("type", out var t2) ? t2.GetString() : null;
        type ??= "default";
        const string f = "rope_scaling";
        return type switch
        {
            "default" => null,
            "linear" => new RopeScaling("linear", RequiredDouble(rs, "factor", file, f)),
            "llama3" => new RopeScaling("llama3",
                RequiredDouble(rs, "factor", file, f),
                RequiredDouble(rs, "low_freq_factor", file, f),
                RequiredDouble(rs, "high_freq_factor", file, f),
                RequiredInt(rs, "original_max_position_embeddings", file, f)),
            _ => throw new ModelLoadException($"{file}: unsupported rope_scaling type '{type}' (supported: default, linear, llama3)"),
        };
    }

    private static IReadOnlyList<int> ReadIds(JsonElement root, string name, string file)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind == JsonValueKind.Number) return [v.GetInt32()];
        if (v.ValueKind == JsonValueKind.Array) return v.EnumerateArray().Select(e => e.GetInt32()).ToArray();
        throw new ModelLoadException($"{file}: field '{name}' must be an integer or a list of integers");
    }

    private static string Where(string name, string? parent) => parent is null ? name : $"{parent}.{name}";

    private static int RequiredInt(JsonElement o, string name, string file, string? parent = null) =>
        OptionalInt(o, name, file, parent) ?? throw new ModelLoadException($"{file}: missing field '{Where(name, parent)}'");

    private static double RequiredDouble(JsonElement o, string name, string file, string? parent = null) =>
        OptionalDouble(o, name, file, parent) ?? throw new ModelLoadException($"{file}: missing field '{Where(name, parent)}'");

    private static int? OptionalInt(JsonElement o, string name, string file, string? parent = null)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var i) || i < 0)
            throw new ModelLoadException($"{file}: field '{Where(name, parent)}' must be a non-negative integer, got {v.GetRawText()}");
        return i;
    }

    private static double? OptionalDouble(JsonElement o, string name, string file, string? parent = null)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number) throw new ModelLoadException($"{file}: field '{Where(name, parent)}' must be a number, got {v.GetRawText()}");
        return v.GetDouble();
    }

    private static bool? OptionalBool(JsonElement o, string name, string file)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new ModelLoadException($"{file}: field '{name}' must be true or false"),
        };
    }
}
