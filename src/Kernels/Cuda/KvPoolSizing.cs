namespace Loom.Kernels.Cuda;

/// <summary>How many KV blocks fit, and what that means for concurrency (the line vLLM logs at start).</summary>
public sealed record KvPoolPlan(int NumBlocks, long PoolBytes, double MaxConcurrency)
{
    public override string ToString() =>
        $"KV cache: {NumBlocks} blocks ({PoolBytes / (1 << 20)} MiB); maximum concurrency for max_model_len requests: {MaxConcurrency:F2}x";
}

/// <summary>
/// vLLM's sizing rule: after the weights are loaded and a profiling forward at the largest batch
/// has run, the pool gets total × gpu_memory_utilization minus everything already in use (weights,
/// activations, the CUDA context), as read from cuMemGetInfo.
/// </summary>
public static class KvPoolSizing
{
    public static KvPoolPlan Plan(long freeBytes, long totalBytes, double gpuMemoryUtilization, long bytesPerBlock, int blockSize, int maxModelLen)
    {
        if (!(gpuMemoryUtilization > 0 && gpuMemoryUtilization <= 1)) throw new ArgumentOutOfRangeException(nameof(gpuMemoryUtilization), "must be in (0, 1]");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerBlock);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxModelLen);
        long used = totalBytes - freeBytes;
        long budget = (long)(totalBytes * gpuMemoryUtilization) - used;
        if (budget < bytesPerBlock)
            throw new InvalidOperationException(
                $"no room for the KV cache: {used >> 20} MiB of {totalBytes >> 20} MiB are in use after loading and profiling, and " +
                $"gpu_memory_utilization {gpuMemoryUtilization} allows {(long)(totalBytes * gpuMemoryUtilization) >> 20} MiB; raise it or use a smaller model");
        int blocks = (int)Math.Min(int.MaxValue, budget / bytesPerBlock);
        return new KvPoolPlan(blocks, blocks * bytesPerBlock, (double)blocks * blockSize / maxModelLen);
    }
}
