using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>
/// How <see cref="ModelGenerator"/> writes a model. Layers/Vocab override the preset (fast tests);
/// ShardSizeBytes is the safetensors shard threshold (HF's default is several GB; tests lower it
/// to force sharding).
/// </summary>
public sealed record GenerateOptions
{
    public DType DType { get; init; } = DType.F32;
    public ulong Seed { get; init; }
    public int? Layers { get; init; }
    public int? Vocab { get; init; }
    public long ShardSizeBytes { get; init; } = 2L * 1024 * 1024 * 1024;

    /// <summary>When set, also write a GGUF of the same weights here (for llama.cpp).</summary>
    public string? GgufPath { get; init; }

    public GgufType GgufType { get; init; } = GgufType.F32;
}
