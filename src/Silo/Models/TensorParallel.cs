using System.Runtime.InteropServices;
using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// Megatron-style tensor parallelism for Llama-family layers. Each of <c>worldSize</c> shards holds
/// a contiguous share of the attention heads (q, and k/v by kv head) and of the MLP columns:
/// q/k/v and gate/up are column-parallel (row slices of the [out, in] weights), o_proj and down_proj
/// are row-parallel (column slices), followed by an all-reduce. Norms, embeddings and lm_head are
/// replicated. A shard is an ordinary <see cref="LlamaModel"/> with the shard's config.
/// </summary>
public static class TensorParallel
{
    /// <summary>The shard's config, or a clear error naming what does not divide.</summary>
    public static ModelConfig ShardConfig(ModelConfig c, int worldSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(worldSize);
        if (c.NumHeads % worldSize != 0)
            throw new ArgumentException($"tensor_parallel_size {worldSize} does not divide num_attention_heads {c.NumHeads}");
        if (c.NumKvHeads % worldSize != 0)
            throw new ArgumentException($"tensor_parallel_size {worldSize} does not divide num_key_value_heads {c.NumKvHeads}");
        if (c.IntermediateSize % worldSize != 0)
            throw new ArgumentException($"tensor_parallel_size {worldSize} does not divide intermediate_size {c.IntermediateSize}");
        return c with { NumHeads = c.NumHeads / worldSize, NumKvHeads = c.NumKvHeads / worldSize, IntermediateSize = c.IntermediateSize / worldSize };
    }
}

/// <summary>
/// The weights of shard <c>rank</c> of <c>worldSize</c>: row slices are views into the mapped
/// checkpoint (no copy); column slices (o_proj, down_proj) are gathered once into native memory
/// owned here, so keep this alive while the backend may still read the views (it copies them).
/// </summary>
public sealed unsafe class ShardedWeights(IWeights full, ModelConfig config, int rank, int worldSize) : IWeights, IDisposable
{
    private readonly List<nint> _owned = [];

    public bool Contains(string name) => full.Contains(name);

    public WeightView Get(string name, params int[] expectedShape)
    {
        var c = config;
        int qRows = c.NumHeads * c.HeadDim / worldSize, kvRows = c.NumKvHeads * c.HeadDim / worldSize, f = c.IntermediateSize / worldSize;
        WeightView view;
        if (name.EndsWith(".self_attn.q_proj.weight", StringComparison.Ordinal) || name.EndsWith(".self_attn.q_proj.bias", StringComparison.Ordinal))
            view = Rows(full.Get(name), rank * qRows, qRows);
        else if (name.EndsWith(".self_attn.k_proj.weight", StringComparison.Ordinal) || name.EndsWith(".self_attn.v_proj.weight", StringComparison.Ordinal)
                 || name.EndsWith(".self_attn.k_proj.bias", StringComparison.Ordinal) || name.EndsWith(".self_attn.v_proj.bias", StringComparison.Ordinal))
            view = Rows(full.Get(name), rank * kvRows, kvRows);
        else if (name.EndsWith(".mlp.gate_proj.weight", StringComparison.Ordinal) || name.EndsWith(".mlp.up_proj.weight", StringComparison.Ordinal))
            view = Rows(full.Get(name), rank * f, f);
        else if (name.EndsWith(".self_attn.o_proj.weight", StringComparison.Ordinal))
            view = Columns(full.Get(name), rank * qRows, qRows);
        else if (name.EndsWith(".mlp.down_proj.weight", StringComparison.Ordinal))
            view = Columns(full.Get(name), rank * f, f);
        else
            view = full.Get(name);
        if (expectedShape.Length > 0 && !view.Shape.AsSpan().SequenceEqual(expectedShape))
            throw new ModelLoadException($"shard {rank}/{worldSize}: tensor '{name}' has shape {ModelWeights.FormatShape(view.Shape)}, expected {ModelWeights.FormatShape(expectedShape)}");
        return view;
    }

    /// <summary>Rows [start, start+count) of a [rows, cols] (or [rows]) tensor: contiguous, a view.</summary>
    private static WeightView Rows(WeightView w, int start, int count)
    {
        long rowBytes = (w.Shape.Length > 1 ? w.Shape[1] : 1) * (long)w.DType.Size();
        int[] shape = w.Shape.Length > 1 ? [count, w.Shape[1]] : [count];
        return new WeightView(w.Data + (nint)(start * rowBytes), w.DType, shape, w.Name);
    }

    /// <summary>Columns [start, start+count) of a [rows, cols] tensor, gathered into owned memory.</summary>
    private WeightView Columns(WeightView w, int start, int count)
    {
        int rows = w.Shape[0], cols = w.Shape[1], es = w.DType.Size();
        long bytes = (long)rows * count * es;
        var dst = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        lock (_owned) _owned.Add((nint)dst);
        var src = (byte*)w.Data;
        for (int r = 0; r < rows; r++)
            Buffer.MemoryCopy(src + ((long)r * cols + start) * es, dst + (long)r * count * es, count * es, count * es);
        return new WeightView((nint)dst, w.DType, [rows, count], w.Name);
    }

    public void Dispose()
    {
        lock (_owned)
        {
            foreach (var p in _owned) NativeMemory.AlignedFree((void*)p);
            _owned.Clear();
        }
    }
}
