// Written here: the GGUF readers on NuGet wrap native llama.cpp (LLamaSharp); config-from-metadata is part of Loom's managed reader.
namespace Loom.Silo.Models;

/// <summary>
/// Serving a model from one .gguf file: where the file is (a path, or a folder holding exactly one
/// .gguf and no safetensors), its <see cref="ModelConfig"/> from the metadata (architectures llama,
/// mistral, qwen2, qwen3), and its weights.
/// </summary>
public static class GgufModel
{
    /// <summary>The .gguf file <paramref name="path"/> names: itself, or the one .gguf in a folder without safetensors; null otherwise.</summary>
    public static string? Resolve(string path)
    {
        if (File.Exists(path)) return path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || IsGguf(path) ? path : null;
        if (!Directory.Exists(path)) return null;
        if (File.Exists(Path.Combine(path, ModelWeights.SingleFileName)) || File.Exists(Path.Combine(path, ModelWeights.IndexFileName))) return null;
        var found = Directory.GetFiles(path, "*.gguf");
        return found.Length switch
        {
            0 => null,
            1 => found[0],
            _ => throw new ModelLoadException($"{path}: holds {found.Length} .gguf files ({string.Join(", ", found.Select(Path.GetFileName))}); name one"),
        };
    }

    /// <summary>
    /// tokenizer.json and tokenizer_config.json text for a model path ("" / null when absent): a
    /// Hugging Face folder's files; for a .gguf, a tokenizer.json beside it wins, otherwise the
    /// file's own tokenizer (<see cref="GgufTokenizer"/>), chat template included.
    /// </summary>
    public static (string Json, string? Config) TokenizerFiles(string path)
    {
        static string? Read(string p) => File.Exists(p) ? File.ReadAllText(p) : null;
        if (Resolve(path) is not { } gguf) return (Read(Path.Combine(path, "tokenizer.json")) ?? "", Read(Path.Combine(path, "tokenizer_config.json")));
        string folder = Path.GetDirectoryName(Path.GetFullPath(gguf))!;
        string? json = Read(Path.Combine(folder, "tokenizer.json")), config = Read(Path.Combine(folder, "tokenizer_config.json"));
        if (json is not null && config is not null) return (json, config);
        using var f = GgufFile.Open(gguf);
        var built = GgufTokenizer.Build(f);
        return (json ?? built?.TokenizerJson ?? "", config ?? built?.TokenizerConfigJson);
    }

    private static bool IsGguf(string file)
    {
        try
        {
            using var s = File.OpenRead(file);
            Span<byte> magic = stackalloc byte[4];
            return s.Read(magic) == 4 && magic.SequenceEqual("GGUF"u8);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static readonly Dictionary<string, (ModelArchitecture Arch, string Name)> Architectures = new()
    {
        ["llama"] = (ModelArchitecture.Llama, "LlamaForCausalLM"),
        ["mistral"] = (ModelArchitecture.Mistral, "MistralForCausalLM"),
        ["qwen2"] = (ModelArchitecture.Qwen2, "Qwen2ForCausalLM"),
        ["qwen3"] = (ModelArchitecture.Qwen3, "Qwen3ForCausalLM"),
    };

    /// <summary>The config the metadata describes; each missing or malformed key is named.</summary>
    public static ModelConfig Config(GgufFile f)
    {
        string arch = f.Get<string>("general.architecture");
        if (!Architectures.TryGetValue(arch, out var a))
            throw new ModelLoadException($"{f.Path}: general.architecture '{arch}' is not supported (llama, mistral, qwen2, qwen3)");
        int hidden = f.Get<int>($"{arch}.embedding_length");
        int heads = f.Get<int>($"{arch}.attention.head_count");
        int kvHeads = f.TryGet($"{arch}.attention.head_count_kv", out int kv) ? kv : heads;
        int headDim = f.TryGet($"{arch}.attention.key_length", out int hd) ? hd : hidden / heads;
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new ModelLoadException($"{f.Path}: {arch}.attention.head_count {heads} is not a multiple of {arch}.attention.head_count_kv {kvHeads}");
        int vocab = f.TryGet($"{arch}.vocab_size", out int vs) ? vs
            : f.TryGet("tokenizer.ggml.tokens", out string[] tokens) ? tokens.Length
            : f.Tensors.TryGetValue("token_embd.weight", out var te) ? (int)te.Dims[1]
            : throw new ModelLoadException($"{f.Path}: no {arch}.vocab_size, tokenizer.ggml.tokens or token_embd.weight to size the vocabulary");
        RopeScaling? scaling = null;
        if (f.TryGet($"{arch}.rope.scaling.type", out string st) && st is not ("none" or ""))
        {
            if (st != "linear") throw new ModelLoadException($"{f.Path}: {arch}.rope.scaling.type '{st}' is not supported (none, linear)");
            scaling = new RopeScaling("linear", f.Get<double>($"{arch}.rope.scaling.factor"));
        }

        float[]? ropeFactors = f.Tensors.TryGetValue("rope_freqs.weight", out var rf) ? RopeFactors(f, rf, headDim) : null;
        var eos = new List<int>();
        if (f.TryGet("tokenizer.ggml.eos_token_id", out int e)) eos.Add(e);
        if (f.TryGet("tokenizer.ggml.eot_token_id", out int eot) && !eos.Contains(eot)) eos.Add(eot);
        return new ModelConfig
        {
            Architecture = a.Arch,
            ArchitectureName = a.Name,
            HiddenSize = hidden,
            IntermediateSize = f.Get<int>($"{arch}.feed_forward_length"),
            NumLayers = f.Get<int>($"{arch}.block_count"),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = vocab,
            RmsNormEps = f.Get<double>($"{arch}.attention.layer_norm_rms_epsilon"),
            RopeTheta = f.TryGet($"{arch}.rope.freq_base", out double theta) ? theta : 10000.0,
            RopeScaling = scaling,
            RopeFreqFactors = ropeFactors,
            MaxPositionEmbeddings = f.TryGet($"{arch}.context_length", out int ctx) ? ctx : 2048,
            TieWordEmbeddings = !f.Tensors.ContainsKey("output.weight"),
            AttentionBias = f.Tensors.ContainsKey("blk.0.attn_q.bias"),
            QkNorm = f.Tensors.ContainsKey("blk.0.attn_q_norm.weight"),
            TorchDtype = "gguf",
            BosTokenId = f.TryGet("tokenizer.ggml.bos_token_id", out int bos) ? bos : null,
            EosTokenIds = eos,
        };
    }

    /// <summary>
    /// Llama 3.1+'s rope scaling as llama.cpp's converter stores it: an F32 tensor of head_dim / 2
    /// divisors of the inverse frequencies (no rope.scaling.* keys), read once into the config.
    /// </summary>
    private static unsafe float[] RopeFactors(GgufFile f, GgufTensorInfo t, int headDim)
    {
        if (t.Type != GgufType.F32 || t.Dims.Length != 1 || t.Dims[0] != headDim / 2)
            throw new ModelLoadException($"{f.Path}: tensor 'rope_freqs.weight' is {t.Type} [{string.Join(",", t.Dims)}], expected F32 [{headDim / 2}] (head_dim / 2)");
        var factors = new ReadOnlySpan<float>((void*)f.DataOf(t), headDim / 2).ToArray();
        if (factors.Any(x => !float.IsFinite(x) || x <= 0))
            throw new ModelLoadException($"{f.Path}: tensor 'rope_freqs.weight' holds a factor that is not a positive number");
        return factors;
    }

    /// <summary>
    /// Opens the file and its weights; <paramref name="dequantizeToBf16"/> for backends without
    /// quantized kernels. Dispose the returned weights, then the file.
    /// </summary>
    public static (GgufFile File, ModelConfig Config, GgufWeights Weights) Open(string ggufPath, bool dequantizeToBf16)
    {
        var f = GgufFile.Open(ggufPath);
        try
        {
            var c = Config(f);
            return (f, c, new GgufWeights(f, c, dequantizeToBf16));
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }
}
