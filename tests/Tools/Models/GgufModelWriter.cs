using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>
/// Converts a Hugging Face model folder (config + safetensors) into a GGUF v3 file that llama.cpp
/// loads, carrying the same weights: the llama.cpp oracle then runs exactly what Loom runs.
/// </summary>
/// <remarks>
/// Follows convert_hf_to_gguf.py: 1-D tensors (norms, biases, rope factors) are always F32; for
/// arch "llama" the Q/K rows are permuted from HF's rotate-half layout to llama.cpp's interleaved
/// RoPE layout; qwen2/qwen3 use NEOX RoPE in llama.cpp and need no permutation. Tied embeddings
/// omit output.weight, and llama.cpp then reuses token_embd.
/// </remarks>
public static class GgufModelWriter
{
    /// <summary>&lt;unk&gt;, &lt;s&gt;, &lt;/s&gt; and the 128 ASCII byte tokens.</summary>
    public const int MinVocab = 3 + 128;

    // llama.cpp token types.
    private const int TokenNormal = 1, TokenUnknown = 2, TokenControl = 3, TokenByte = 6;

    public static string GgufArchitecture(ModelArchitecture a) => a switch
    {
        ModelArchitecture.Llama or ModelArchitecture.Mistral => "llama",
        ModelArchitecture.Qwen2 => "qwen2",
        ModelArchitecture.Qwen3 => "qwen3",
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, null),
    };

    /// <summary>Writes a model folder's weights; its tokenizer.json, when present, goes into the file too.</summary>
    public static void Write(ModelConfig c, ModelWeights weights, string path, GgufType type, string name) =>
        Write(c, weights, weights.Directory, path, type, name);

    /// <summary>
    /// Writes <paramref name="weights"/> (a checkpoint, or the demo model's <see cref="SeededWeights"/>);
    /// a tokenizer.json in <paramref name="tokenizerDir"/> goes into the file.
    /// </summary>
    public static void Write(ModelConfig c, IWeights weights, string tokenizerDir, string path, GgufType type, string name)
    {
        if (c.VocabSize < MinVocab)
            throw new ArgumentException($"GGUF export needs vocab_size >= {MinVocab} for its minimal tokenizer, got {c.VocabSize}");
        string arch = GgufArchitecture(c.Architecture);
        bool permute = arch == "llama";

        var g = new GgufWriter();
        g.AddString("general.architecture", arch);
        g.AddString("general.name", name);
        g.AddUInt32("general.alignment", GgufWriter.Alignment);
        g.AddUInt32("general.file_type", FileType(type));
        g.AddUInt32($"{arch}.vocab_size", (uint)c.VocabSize);
        g.AddUInt32($"{arch}.context_length", (uint)c.MaxPositionEmbeddings);
        g.AddUInt32($"{arch}.embedding_length", (uint)c.HiddenSize);
        g.AddUInt32($"{arch}.block_count", (uint)c.NumLayers);
        g.AddUInt32($"{arch}.feed_forward_length", (uint)c.IntermediateSize);
        g.AddUInt32($"{arch}.attention.head_count", (uint)c.NumHeads);
        g.AddUInt32($"{arch}.attention.head_count_kv", (uint)c.NumKvHeads);
        // Explicit because Qwen3's head_dim is not hidden/heads, which llama.cpp would assume.
        g.AddUInt32($"{arch}.attention.key_length", (uint)c.HeadDim);
        g.AddUInt32($"{arch}.attention.value_length", (uint)c.HeadDim);
        g.AddUInt32($"{arch}.rope.dimension_count", (uint)c.HeadDim);
        g.AddFloat32($"{arch}.rope.freq_base", (float)c.RopeTheta);
        g.AddFloat32($"{arch}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        if (c.RopeScaling is { Type: "linear" } lin)
        {
            g.AddString($"{arch}.rope.scaling.type", "linear");
            g.AddFloat32($"{arch}.rope.scaling.factor", (float)lin.Factor);
        }
        // A folder with a real tokenizer (the demo model's GPT-2 files) carries it into the file, so the
        // .gguf alone serves chat; generated presets get the minimal vocabulary llama.cpp accepts.
        var tokenizerJson = Path.Combine(tokenizerDir, "tokenizer.json");
        if (File.Exists(tokenizerJson))
        {
            var config = Path.Combine(tokenizerDir, "tokenizer_config.json");
            GgufTokenizerWriter.AddFromHuggingFace(g, File.ReadAllText(tokenizerJson), File.Exists(config) ? File.ReadAllText(config) : null);
        }
        else
        {
            AddTokenizer(g, c.VocabSize);
        }

        void Copy(string hf, string gguf, int permuteHeads = 0)
        {
            var view = weights.Get(hf);
            var t = view.Shape.Length == 1 ? GgufType.F32 : TensorType(type, gguf, view.Shape[^1], c.NumLayers);
            g.AddTensor(gguf, t, view.Shape.Select(d => (long)d).ToArray(), s => CopyRows(view, t, permuteHeads, c.HeadDim, s));
        }

        Copy("model.embed_tokens.weight", "token_embd.weight");
        if (c.RopeScaling is { Type: "llama3" } l3 && arch == "llama")
        {
            var factors = Llama3RopeFactors(c.RopeTheta, c.HeadDim, l3);
            g.AddTensor("rope_freqs.weight", GgufType.F32, [factors.Length], s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(factors.AsSpan())));
        }
        for (int i = 0; i < c.NumLayers; i++)
        {
            string hp = $"model.layers.{i}.", gp = $"blk.{i}.";
            Copy(hp + "input_layernorm.weight", gp + "attn_norm.weight");
            Copy(hp + "self_attn.q_proj.weight", gp + "attn_q.weight", permute ? c.NumHeads : 0);
            Copy(hp + "self_attn.k_proj.weight", gp + "attn_k.weight", permute ? c.NumKvHeads : 0);
            Copy(hp + "self_attn.v_proj.weight", gp + "attn_v.weight");
            if (c.AttentionBias)
            {
                Copy(hp + "self_attn.q_proj.bias", gp + "attn_q.bias", permute ? c.NumHeads : 0);
                Copy(hp + "self_attn.k_proj.bias", gp + "attn_k.bias", permute ? c.NumKvHeads : 0);
                Copy(hp + "self_attn.v_proj.bias", gp + "attn_v.bias");
            }
            Copy(hp + "self_attn.o_proj.weight", gp + "attn_output.weight");
            if (c.QkNorm)
            {
                Copy(hp + "self_attn.q_norm.weight", gp + "attn_q_norm.weight");
                Copy(hp + "self_attn.k_norm.weight", gp + "attn_k_norm.weight");
            }
            Copy(hp + "post_attention_layernorm.weight", gp + "ffn_norm.weight");
            Copy(hp + "mlp.gate_proj.weight", gp + "ffn_gate.weight");
            Copy(hp + "mlp.up_proj.weight", gp + "ffn_up.weight");
            Copy(hp + "mlp.down_proj.weight", gp + "ffn_down.weight");
        }
        Copy("model.norm.weight", "output_norm.weight");
        if (!c.TieWordEmbeddings) Copy("lm_head.weight", "output.weight");
        g.Write(path);
    }

    /// <summary>llama.cpp's general.file_type for a file of mostly <paramref name="type"/>.</summary>
    public static uint FileType(GgufType type) => type switch
    {
        GgufType.F32 => 0, GgufType.F16 => 1, GgufType.Q4_0 => 2, GgufType.Q8_0 => 7, GgufType.Q5_0 => 8, GgufType.Q4_K => 14,
        GgufType.Q6_K => 18, GgufType.Q4_K_M => 15, GgufType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>
    /// The type a 2-D tensor gets in a file of <paramref name="fileType"/>. Q4_K_M follows llama.cpp:
    /// output.weight Q6_K; attn_v and ffn_down Q6_K in the first and last eighth of the layers and
    /// every third between; the rest Q4_K. K-quants need rows that are whole 256-blocks: narrower
    /// rows fall back as llama.cpp's do, to Q5_0 (for Q4_K) and Q8_0 (for Q6_K).
    /// </summary>
    public static GgufType TensorType(GgufType fileType, string ggufName, int rowLength, int numLayers)
    {
        var t = fileType;
        if (fileType == GgufType.Q4_K_M)
        {
            t = GgufType.Q4_K;
            if (ggufName == "output.weight") t = GgufType.Q6_K;
            else if (ggufName.EndsWith(".attn_v.weight", StringComparison.Ordinal) || ggufName.EndsWith(".ffn_down.weight", StringComparison.Ordinal))
            {
                int layer = int.Parse(ggufName.Split('.')[1], System.Globalization.CultureInfo.InvariantCulture);
                if (layer < numLayers / 8 || layer >= 7 * numLayers / 8 || (layer - numLayers / 8) % 3 == 2) t = GgufType.Q6_K;
            }
        }

        if (t is GgufType.Q4_K or GgufType.Q6_K && rowLength % 256 != 0) t = t == GgufType.Q4_K ? GgufType.Q5_0 : GgufType.Q8_0;
        if (t is GgufType.Q4_0 or GgufType.Q5_0 or GgufType.Q8_0 && rowLength % 32 != 0) t = GgufType.F16;
        return t;
    }

    /// <summary>llama.cpp's rope_freqs for rope_type llama3, as convert_hf_to_gguf.py computes them.</summary>
    public static float[] Llama3RopeFactors(double theta, int headDim, RopeScaling rs)
    {
        double lowWavelen = rs.OriginalMaxPositionEmbeddings / rs.LowFreqFactor;
        double highWavelen = rs.OriginalMaxPositionEmbeddings / rs.HighFreqFactor;
        var factors = new float[headDim / 2];
        for (int k = 0; k < factors.Length; k++)
        {
            double freq = (float)(1.0 / Math.Pow(theta, (float)(2 * k) / headDim));
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) factors[k] = 1f;
            else if (wavelen > lowWavelen) factors[k] = (float)rs.Factor;
            else
            {
                double smooth = (rs.OriginalMaxPositionEmbeddings / wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor);
                factors[k] = (float)(1 / ((1 - smooth) / rs.Factor + smooth));
            }
        }
        return factors;
    }

    private static unsafe void CopyRows(WeightView view, GgufType target, int permuteHeads, int headDim, Stream s)
    {
        if (view.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ModelLoadException($"tensor '{view.Name}' has dtype {view.DType}, which GGUF export does not convert");
        // A permuted 1-D tensor (q/k bias) moves single elements, so treat each element as a row.
        bool oneD = view.Shape.Length == 1;
        int rows = oneD ? (permuteHeads > 0 ? view.Shape[0] : 1) : view.Shape[0];
        int cols = (int)(view.ElementCount / rows);
        if (permuteHeads > 0 && rows != permuteHeads * headDim)
            throw new ModelLoadException($"tensor '{view.Name}' has {rows} rows, expected heads {permuteHeads} x head_dim {headDim}");
        int srcSize = view.DType.Size();
        var dst = GgufTypes.ToDType(target) ?? throw new ArgumentException($"cannot write GGUF type {target}");
        var values = new float[cols];
        var bytes = dst.IsQuantized() ? [] : new byte[cols * dst.Size()];
        for (int r = 0; r < rows; r++)
        {
            int src = permuteHeads > 0 ? GgufWeights.PermutedSourceRow(r, headDim) : r;
            var row = new ReadOnlySpan<byte>((byte*)view.Data + (long)src * cols * srcSize, cols * srcSize);
            WeightConvert.Decode(row, view.DType, values);
            if (dst.IsQuantized())
            {
                s.Write(Loom.Kernels.Cpu.Quant.GgmlQuantizer.QuantizeRow(dst, values));
                continue;
            }

            WeightConvert.Encode(values, dst, bytes);
            s.Write(bytes);
        }
    }

    /// <summary>
    /// The minimal SentencePiece-style vocabulary llama.cpp accepts: specials, the 128 ASCII byte
    /// tokens (not all 256: a random model would emit invalid UTF-8), then unique fillers.
    /// </summary>
    private static void AddTokenizer(GgufWriter g, int vocab)
    {
        var tokens = new string[vocab];
        var scores = new float[vocab];
        var types = new int[vocab];
        tokens[0] = "<unk>"; types[0] = TokenUnknown;
        tokens[1] = "<s>"; types[1] = TokenControl;
        tokens[2] = "</s>"; types[2] = TokenControl;
        for (int b = 0; b < 128; b++) { tokens[3 + b] = $"<0x{b:X2}>"; types[3 + b] = TokenByte; }
        for (int i = MinVocab; i < vocab; i++) { tokens[i] = $"tok_{i}"; types[i] = TokenNormal; scores[i] = -i; }
        g.AddString("tokenizer.ggml.model", "llama");
        g.AddStringArray("tokenizer.ggml.tokens", tokens);
        g.AddFloat32Array("tokenizer.ggml.scores", scores);
        g.AddInt32Array("tokenizer.ggml.token_type", types);
        g.AddUInt32("tokenizer.ggml.bos_token_id", 1);
        g.AddUInt32("tokenizer.ggml.eos_token_id", 2);
        g.AddUInt32("tokenizer.ggml.unknown_token_id", 0);
    }
}
