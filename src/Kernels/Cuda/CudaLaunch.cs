namespace Loom.Kernels.Cuda;

/// <summary>A kernel launch shape: grid, block and dynamic shared memory.</summary>
public readonly record struct LaunchShape(uint GridX, uint GridY, uint GridZ, uint Block, uint SharedBytes);

/// <summary>
/// The launch geometry of every kernel in Cuda/Kernels, as pure functions so it is unit-tested
/// without a GPU. The constants mirror the .cu files (PARTITION, SAMPLE_THREADS, the prefill's 8
/// registers per lane).
/// </summary>
public static class CudaLaunch
{
    /// <summary>Context tokens per decode partition (attention.cu PARTITION).</summary>
    public const int DecodePartition = 512;

    public const int DecodeThreads = 128;
    public const int SampleThreads = 1024;

    /// <summary>The prefill kernel keeps head_dim / 32 accumulators per lane in 8 registers.</summary>
    public const int MaxPrefillHeadDim = 256;

    /// <summary>Shared memory a block may use without opting in to more.</summary>
    public const int DefaultSharedLimit = 48 * 1024;

    /// <summary>Row-wise kernels (norms, embedding, silu, gathers): one block per row, a warp multiple of threads up to 1024.</summary>
    public static LaunchShape PerRow(int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        uint threads = (uint)Math.Clamp((cols + 31) / 32 * 32, 32, 1024);
        return new LaunchShape((uint)rows, 1, 1, threads, 0);
    }

    /// <summary>Partitions the decode kernel splits the longest sequence into.</summary>
    public static int DecodePartitions(int maxSeqLen) => Math.Max(1, (maxSeqLen + DecodePartition - 1) / DecodePartition);

    /// <summary>paged_attention_decode: (heads, seqs, partitions), q plus one partition of scores in shared memory.</summary>
    public static LaunchShape Decode(int heads, int seqs, int maxSeqLen, int headDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seqs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        uint shared = (uint)((headDim + DecodePartition) * sizeof(float));
        if (shared > DefaultSharedLimit) throw new NotSupportedException($"head_dim {headDim} needs {shared} bytes of shared memory > {DefaultSharedLimit}");
        return new LaunchShape((uint)heads, (uint)seqs, (uint)DecodePartitions(maxSeqLen), DecodeThreads, shared);
    }

    /// <summary>Floats of the split-decode scratch: max and sum per (seq, head, partition), and head_dim partial outputs.</summary>
    public static (long Stats, long Outputs) DecodeScratch(int heads, int seqs, int maxSeqLen, int headDim)
    {
        long slots = (long)seqs * heads * DecodePartitions(maxSeqLen);
        return (slots, slots * headDim);
    }

    /// <summary>
    /// paged_attention_prefill: one warp per (query token, head). Tokens go on x: gridDim.y and .z
    /// stop at 65,535, and one step's prefill may carry more tokens than that (heads never do).
    /// </summary>
    public static LaunchShape Prefill(int heads, int tokens, int headDim)
    {
        if (headDim > MaxPrefillHeadDim) throw new NotSupportedException($"head_dim {headDim} > {MaxPrefillHeadDim} for the prefill kernel");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        return new LaunchShape((uint)tokens, (uint)heads, 1, 32, 0);
    }

    /// <summary>The hardware grid limits (every GPU since compute 3.0): x up to 2^31 - 1, y and z up to 65,535.</summary>
    public const uint MaxGridX = int.MaxValue, MaxGridYZ = 65535;

    /// <summary>
    /// Throws a clear error for a shape the driver would refuse with a bare CUDA_ERROR_INVALID_VALUE
    /// (a zero or oversized grid dimension, a block over 1024 threads), naming the kernel.
    /// </summary>
    public static void Validate(string kernel, LaunchShape s)
    {
        if (s.GridX is 0 or > MaxGridX || s.GridY is 0 or > MaxGridYZ || s.GridZ is 0 or > MaxGridYZ || s.Block is 0 or > 1024)
            throw new NotSupportedException($"kernel {kernel}: grid ({s.GridX}, {s.GridY}, {s.GridZ}) x {s.Block} threads is outside the CUDA limits " +
                $"(x <= {MaxGridX}, y and z <= {MaxGridYZ}, 1..1024 threads)");
    }

    /// <summary>Sampling kernels: one 1024-thread block per row.</summary>
    public static LaunchShape Sample(int rows) => new((uint)rows, 1, 1, SampleThreads, 0);

    /// <summary>Grid-stride elementwise kernels: enough 256-thread blocks to cover n, capped.</summary>
    /// <summary>One thread per (slot, token): x over the vocabulary in blocks of 256, y over the slots.</summary>
    public static LaunchShape PerSlotTokens(int slots, int vocab) => new((uint)((vocab + 255) / 256), (uint)slots, 1, 256, 0);

    public static LaunchShape Elementwise(long n) => new((uint)Math.Clamp((n + 255) / 256, 1, 65535), 1, 1, 256, 0);
}
