using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>Engine knobs, named as vLLM names them.</summary>
public sealed record EngineOptions
{
    public int BlockSize { get; init; } = 16;
    public int MaxNumSeqs { get; init; } = 64;
    public int MaxNumBatchedTokens { get; init; } = 512;

    /// <summary>Longest prompt + output a request may reach; 0 means the model's max_position_embeddings.</summary>
    public int MaxModelLen { get; init; }

    /// <summary>KV pool size in bytes on the CPU backend.</summary>
    public long KvCacheBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>Overrides KvCacheBytes with an exact block count (tests and benchmarks).</summary>
    public int? NumBlocks { get; init; }

    /// <summary>
    /// auto | bf16 | f32. auto follows the checkpoint the way vLLM's kv_cache_dtype=auto does:
    /// bf16/f16 models get a bf16 cache (half the bytes per block, so attention streams half the
    /// memory and the pool holds twice the tokens), f32 models an f32 one.
    /// </summary>
    public string KvCacheDType { get; init; } = "auto";

    public bool EnablePrefixCaching { get; init; } = true;

    /// <summary>
    /// Where tokens are sampled: auto (on the device when the backend can, so the logits never leave
    /// it; on the host otherwise), host (the host <see cref="Sampler"/>), or device (a backend without
    /// device sampling runs the device algorithm's CPU twin, for tests and parity checks).
    /// </summary>
    public string Sampling { get; init; } = "auto";

    /// <summary>
    /// Failed steps in a row after which the worker counts as sick: it fails over what it holds,
    /// refuses new work and turns unready. A device error makes it sick at once.
    /// </summary>
    public int MaxConsecutiveStepFailures { get; init; } = 3;


    public (string Param, string Message)? Validate()
    {
        if (BlockSize < 1) return ("block_size", "block_size must be at least 1");
        if (MaxNumSeqs < 1) return ("max_num_seqs", "max_num_seqs must be at least 1");
        if (MaxNumBatchedTokens < 1) return ("max_num_batched_tokens", "max_num_batched_tokens must be at least 1");
        if (MaxModelLen < 0) return ("max_model_len", "max_model_len must not be negative");
        if (NumBlocks is < 1) return ("num_blocks", "num_blocks must be at least 1");
        if (KvCacheDType is not ("auto" or "bf16" or "bfloat16" or "f32" or "float32"))
            return ("kv_cache_dtype", $"kv_cache_dtype must be auto, bf16 or f32, got '{KvCacheDType}'");
        if (MaxConsecutiveStepFailures < 1) return ("max_consecutive_step_failures", "max_consecutive_step_failures must be at least 1");
        if (Sampling is not ("auto" or "host" or "device"))
            return ("sampling", $"sampling must be auto, host or device, got '{Sampling}'");
        return null;
    }

    /// <summary>Bytes of one KV block (every layer's K and V for BlockSize tokens) of <paramref name="config"/>.</summary>
    public long BytesPerBlock(Loom.Silo.Models.ModelConfig config) =>
        new Loom.Kernels.KvCacheSpec(config.NumLayers, 1, BlockSize, config.NumKvHeads, config.HeadDim, ResolveKvCacheDType(config)).BytesPerBlock;

    /// <summary>The KV element type for a model: see <see cref="KvCacheDType"/>.</summary>
    public Loom.Kernels.DType ResolveKvCacheDType(Loom.Silo.Models.ModelConfig config) => KvCacheDType switch
    {
        "bf16" or "bfloat16" => Loom.Kernels.DType.BF16,
        "f32" or "float32" => Loom.Kernels.DType.F32,
        _ => config.TorchDtype is "bfloat16" or "float16" ? Loom.Kernels.DType.BF16 : Loom.Kernels.DType.F32,
    };
}
