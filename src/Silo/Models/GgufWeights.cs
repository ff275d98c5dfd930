// Written here: the GGUF readers on NuGet wrap native llama.cpp (LLamaSharp); mapping llama.cpp tensor names back to Hugging Face ones is Loom-specific.
using System.Runtime.InteropServices;
using Loom.Kernels;
using Loom.Kernels.Cpu.Quant;

namespace Loom.Silo.Models;

/// <summary>
/// A GGUF model as Loom's <see cref="IWeights"/>: Hugging Face tensor names mapped to llama.cpp's,
/// shapes in HF order, and for arch llama/mistral the Q/K rows un-permuted back from the
/// interleaved-RoPE order the converter wrote (row moves only, so quantized rows move whole).
/// Quantized tensors are handed out as they are (the CPU keeps them quantized), or, with
/// <see cref="DequantizeToBf16"/>, decoded to bf16 for backends without quantized kernels (the GPU).
/// </summary>
public sealed unsafe class GgufWeights : IWeights, IDisposable
{
    private readonly List<nint> _owned = [];
    private readonly Dictionary<string, WeightView> _cache = new(StringComparer.Ordinal);

    public GgufWeights(GgufFile file, ModelConfig config, bool dequantizeToBf16)
    {
        File = file;
        Config = config;
        DequantizeToBf16 = dequantizeToBf16;
    }

    public GgufFile File { get; }
    public ModelConfig Config { get; }
    public bool DequantizeToBf16 { get; }

    /// <summary>The llama.cpp name of an HF tensor name, and how many heads its rows are permuted over (0: none).</summary>
    public (string Name, int PermuteHeads) Map(string hf)
    {
        var c = Config;
        bool permute = c.Architecture is ModelArchitecture.Llama or ModelArchitecture.Mistral;
        switch (hf)
        {
            case "model.embed_tokens.weight": return ("token_embd.weight", 0);
            case "model.norm.weight": return ("output_norm.weight", 0);
            case "lm_head.weight": return ("output.weight", 0);
        }

        const string layers = "model.layers.";
        if (hf.StartsWith(layers, StringComparison.Ordinal))
        {
            int dot = hf.IndexOf('.', layers.Length);
            string i = hf[layers.Length..dot], rest = hf[(dot + 1)..];
            (string n, int heads) = rest switch
            {
                "input_layernorm.weight" => ("attn_norm.weight", 0),
                "post_attention_layernorm.weight" => ("ffn_norm.weight", 0),
                "self_attn.q_proj.weight" => ("attn_q.weight", permute ? c.NumHeads : 0),
                "self_attn.k_proj.weight" => ("attn_k.weight", permute ? c.NumKvHeads : 0),
                "self_attn.v_proj.weight" => ("attn_v.weight", 0),
                "self_attn.o_proj.weight" => ("attn_output.weight", 0),
                "self_attn.q_proj.bias" => ("attn_q.bias", permute ? c.NumHeads : 0),
                "self_attn.k_proj.bias" => ("attn_k.bias", permute ? c.NumKvHeads : 0),
                "self_attn.v_proj.bias" => ("attn_v.bias", 0),
                "self_attn.q_norm.weight" => ("attn_q_norm.weight", 0),
                "self_attn.k_norm.weight" => ("attn_k_norm.weight", 0),
                "mlp.gate_proj.weight" => ("ffn_gate.weight", 0),
                "mlp.up_proj.weight" => ("ffn_up.weight", 0),
                "mlp.down_proj.weight" => ("ffn_down.weight", 0),
                _ => (rest, 0),
            };
            return ($"blk.{i}.{n}", heads);
        }

        return (hf, 0);
    }

    public bool Contains(string name) => File.Tensors.ContainsKey(Map(name).Name);

    public WeightView Get(string name, params int[] expectedShape)
    {
        var (g, heads) = Map(name);
        if (!File.Tensors.TryGetValue(g, out var t)) throw new ModelLoadException($"{File.Path}: missing tensor '{g}' (Loom's '{name}')");
        var shape = t.Shape;
        if (expectedShape.Length > 0 && !shape.AsSpan().SequenceEqual(expectedShape))
            throw new ModelLoadException($"{File.Path}: tensor '{g}' has shape {ModelWeights.FormatShape(shape)}, expected {ModelWeights.FormatShape(expectedShape)} from the metadata");
        if (_cache.TryGetValue(g, out var cached)) return cached;
        var dtype = GgufTypes.ToDType(t.Type)!.Value;
        var view = new WeightView(File.DataOf(t), dtype, shape, g);
        if (heads > 0) view = Unpermute(view, heads);
        if (DequantizeToBf16 && dtype.IsQuantized()) view = ToBf16(view);
        _cache[g] = view;
        return view;
    }

    /// <summary>
    /// The HF row that GGUF row <paramref name="ggufRow"/> holds under llama.cpp's interleaved-RoPE
    /// permutation, gguf_row[h*d + 2i + s] = hf_row[h*d + s*d/2 + i]. Readers un-permute with it and
    /// the GGUF writer permutes with it, so the two cannot disagree.
    /// </summary>
    public static int PermutedSourceRow(int ggufRow, int headDim)
    {
        int h = ggufRow / headDim, j = ggufRow % headDim;
        return h * headDim + (j % 2) * (headDim / 2) + j / 2;
    }

    /// <summary>HF row PermutedSourceRow(r) is GGUF row r; 1-D tensors move elements.</summary>
    private WeightView Unpermute(WeightView v, int heads)
    {
        int rows = v.Shape[0];
        int headDim = Config.HeadDim;
        if (rows != heads * headDim)
            throw new ModelLoadException($"{File.Path}: tensor '{v.Name}' has {rows} rows, expected {heads} heads x head_dim {headDim}");
        long rowBytes = v.DType.ByteCount(v.ElementCount / rows);
        var dst = Alloc(v.ByteLength);
        for (int r = 0; r < rows; r++)
            Buffer.MemoryCopy((byte*)v.Data + r * rowBytes, (byte*)dst + PermutedSourceRow(r, headDim) * rowBytes, rowBytes, rowBytes);
        return v with { Data = dst };
    }

    private WeightView ToBf16(WeightView v)
    {
        int cols = v.Shape[^1];
        long rows = v.ElementCount / cols;
        var dst = (ushort*)Alloc(v.ElementCount * 2);
        var row = new float[cols];
        long rowBytes = v.DType.ByteCount(cols);
        fixed (float* f = row)
        {
            for (long r = 0; r < rows; r++)
            {
                GgmlBlocks.DequantizeRow(v.DType, (byte*)v.Data + r * rowBytes, f, cols);
                for (int c = 0; c < cols; c++) dst[r * cols + c] = Bf16(f[c]);
            }
        }

        return v with { Data = (nint)dst, DType = DType.BF16 };
    }

    private static ushort Bf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        return (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
    }

    private nint Alloc(long bytes)
    {
        var p = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(64, bytes), 64);
        _owned.Add(p);
        return p;
    }

    public void Dispose()
    {
        foreach (var p in _owned) NativeMemory.AlignedFree((void*)p);
        _owned.Clear();
        _cache.Clear();
    }
}
