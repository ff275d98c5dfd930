using Loom.Kernels.Collectives;
using Loom.Kernels.Cuda;
using Loom.Kernels.Cuda.Interop;

namespace Loom.Kernels.Tests;

/// <summary>The parts of the GPU path that are pure: id marshalling, error names, KV pool sizing.</summary>
public sealed class CudaInteropTests
{
    [Fact]
    public void NcclUniqueIdRoundTripsItsBytes()
    {
        var bytes = Enumerable.Range(0, NcclUniqueId.Bytes).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(bytes, NcclUniqueId.FromArray(bytes).ToArray());
        Assert.Equal(128, System.Runtime.InteropServices.Marshal.SizeOf<NcclUniqueId>());
        Assert.Throws<ArgumentException>(() => NcclUniqueId.FromArray(new byte[127]));
    }

    [Fact]
    public void LibraryErrorsAreNamed()
    {
        Assert.Equal("ncclAllReduce failed: ncclInvalidUsage (5)", new NcclException("ncclAllReduce", 5).Message);
        Assert.Equal("cublasGemmEx failed: CUBLAS_STATUS_NOT_SUPPORTED (15)", new CublasException("cublasGemmEx", 15).Message);
    }

    [Fact]
    public void KvPoolIsSizedFromFreeMemoryAndUtilisation()
    {
        // 141 GiB card, 20 GiB in use after weights and the profiling forward, 0.9 utilisation.
        long total = 141L << 30, free = total - (20L << 30), perBlock = 2L * 32 * 16 * 8 * 128 * 2; // llama3-8b, bf16, 16 tokens
        var plan = KvPoolSizing.Plan(free, total, 0.9, perBlock, 16, 8192);
        long budget = (long)(total * 0.9) - (20L << 30);
        Assert.Equal(budget / perBlock, plan.NumBlocks);
        Assert.Equal(plan.NumBlocks * 16 / 8192.0, plan.MaxConcurrency, 6);
        Assert.Contains("maximum concurrency", plan.ToString());
        var e = Assert.Throws<InvalidOperationException>(() => KvPoolSizing.Plan(1L << 30, 80L << 30, 0.5, perBlock, 16, 8192));
        Assert.Contains("gpu_memory_utilization 0.5", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => KvPoolSizing.Plan(free, total, 1.5, perBlock, 16, 8192));
    }
}
