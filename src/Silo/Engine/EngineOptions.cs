using Microsoft.Extensions.Configuration;

namespace Loom.Silo.Engine;

/// <summary>
/// The worker's engine settings, named as vLLM names them: the configuration's <c>engine</c>
/// section binds straight onto this record (<c>engine.block_size</c>, env
/// <c>LOOM_ENGINE__BLOCK_SIZE</c>), and the engine reads the same instance.
/// </summary>
public sealed record EngineOptions
{
    [ConfigurationKeyName("block_size")] public int BlockSize { get; init; } = 16;
    [ConfigurationKeyName("max_num_seqs")] public int MaxNumSeqs { get; init; } = 64;
    [ConfigurationKeyName("max_num_batched_tokens")] public int MaxNumBatchedTokens { get; init; } = 512;

    /// <summary>Longest prompt + output a request may reach; 0 means the model's max_position_embeddings.</summary>
    [ConfigurationKeyName("max_model_len")] public int MaxModelLen { get; init; }

    /// <summary>Sequences a worker queues beyond its batch; past it the worker refuses and, once every worker has, the gateway answers 429.</summary>
    [ConfigurationKeyName("max_waiting")] public int MaxWaiting { get; init; } = 256;

    /// <summary>KV pool size in bytes on the CPU backend.</summary>
    [ConfigurationKeyName("kv_cache_bytes")] public long KvCacheBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>The share of GPU memory the weights, activations and KV pool may take (the pool gets what is left).</summary>
    [ConfigurationKeyName("gpu_memory_utilization")] public double GpuMemoryUtilization { get; init; } = 0.9;

    /// <summary>Overrides the pool sizing with an exact block count (vLLM's num_gpu_blocks_override).</summary>
    [ConfigurationKeyName("num_blocks")] public int? NumBlocks { get; init; }

    /// <summary>Shards of one model in this silo (vLLM's tensor_parallel_size): GPUs 0..n-1 over NCCL, or CPU shards.</summary>
    [ConfigurationKeyName("tensor_parallel_size")] public int TensorParallelSize { get; init; } = 1;

    /// <summary>CPU threads for the kernels; 0 = all cores.</summary>
    [ConfigurationKeyName("threads")] public int Threads { get; init; }

    /// <summary>CPU kernels: auto (the best this CPU runs) | avx512 | avx2 | neon | portable; forcing one the CPU lacks fails at start-up.</summary>
    [ConfigurationKeyName("cpu_isa")] public string CpuIsa { get; init; } = "auto";

    /// <summary>model (run the model) | simulated (a cost model, no compute: the simulated section).</summary>
    [ConfigurationKeyName("backend")] public string Backend { get; init; } = "model";

    /// <summary>
    /// auto | bf16 | f32. auto follows the checkpoint the way vLLM's kv_cache_dtype=auto does:
    /// bf16/f16 models get a bf16 cache (half the bytes per block, so attention streams half the
    /// memory and the pool holds twice the tokens), f32 models an f32 one.
    /// </summary>
    [ConfigurationKeyName("kv_cache_dtype")] public string KvCacheDType { get; init; } = "auto";

    [ConfigurationKeyName("enable_prefix_caching")] public bool EnablePrefixCaching { get; init; } = true;

    /// <summary>
    /// Where tokens are sampled: auto (on the device when the backend can, so the logits never leave
    /// it; on the host otherwise), host (<see cref="Loom.Kernels.Sampling.TokenSampler"/> on the CPU), or device (a backend without
    /// device sampling runs the device algorithm's CPU twin, for tests and parity checks).
    /// </summary>
    [ConfigurationKeyName("sampling")] public string Sampling { get; init; } = "auto";

    /// <summary>
    /// Failed steps in a row after which the worker counts as sick: it fails over what it holds,
    /// refuses new work and turns unready. A device error makes it sick at once.
    /// </summary>
    [ConfigurationKeyName("max_consecutive_step_failures")] public int MaxConsecutiveStepFailures { get; init; } = 3;

    /// <summary>
    /// Bytes a worker's compiled structured-output constraints may keep, all together: automata, DFA
    /// states, transition rows and the cached allowed-token masks (one per DFA state, vocab/8 bytes,
    /// ~19 KB on a 152k vocabulary). Past it the least recently used constraints are evicted and masks
    /// dropped, to be computed again when next needed.
    /// </summary>
    [ConfigurationKeyName("structured_output_cache_bytes")] public long StructuredOutputCacheBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>The first invalid setting as (key within the engine section, message), or null when all are valid.</summary>
    public (string Key, string Message)? Validate()
    {
        if (BlockSize < 1) return ("block_size", $"must be at least 1, got {BlockSize}");
        if (MaxNumSeqs < 1) return ("max_num_seqs", $"must be at least 1, got {MaxNumSeqs}");
        if (MaxNumBatchedTokens < 1) return ("max_num_batched_tokens", $"must be at least 1, got {MaxNumBatchedTokens}");
        if (MaxModelLen < 0) return ("max_model_len", $"must be 0 (the model's) or positive, got {MaxModelLen}");
        if (MaxWaiting < 0) return ("max_waiting", $"must be 0 (no queue beyond the batch) or positive, got {MaxWaiting}");
        if (KvCacheBytes < 1) return ("kv_cache_bytes", $"must be positive, got {KvCacheBytes}");
        if (!(GpuMemoryUtilization > 0 && GpuMemoryUtilization <= 1)) return ("gpu_memory_utilization", $"must be in (0, 1], got {GpuMemoryUtilization}");
        if (NumBlocks is < 1) return ("num_blocks", $"must be at least 1, got {NumBlocks}");
        if (KvCacheDType is not ("auto" or "bf16" or "bfloat16" or "f32" or "float32"))
            return ("kv_cache_dtype", $"must be auto, bf16 or f32, got '{KvCacheDType}'");
        if (TensorParallelSize < 1) return ("tensor_parallel_size", $"must be at least 1, got {TensorParallelSize}");
        if (Threads < 0) return ("threads", $"must be 0 (all cores) or positive, got {Threads}");
        if (CpuIsa is not ("auto" or "avx512" or "avx2" or "neon" or "portable"))
            return ("cpu_isa", $"must be auto, avx512, avx2, neon or portable, got '{CpuIsa}'");
        if (Backend is not ("model" or "simulated")) return ("backend", $"must be model or simulated, got '{Backend}'");
        if (MaxConsecutiveStepFailures < 1) return ("max_consecutive_step_failures", $"must be at least 1, got {MaxConsecutiveStepFailures}");
        if (StructuredOutputCacheBytes < 1) return ("structured_output_cache_bytes", $"must be positive, got {StructuredOutputCacheBytes}");
        if (Sampling is not ("auto" or "host" or "device"))
            return ("sampling", $"must be auto, host or device, got '{Sampling}'");
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
