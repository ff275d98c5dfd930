using Loom.Kernels.Cpu;
using Loom.Kernels.Cuda;
using Loom.Kernels.Cuda.Interop;

namespace Loom.Kernels.Tests;

/// <summary>GPU detection and the device: auto/cpu/cuda choice, deterministic through a fake driver probe.</summary>
public sealed class CudaDetectionTests
{
    private sealed class FakeProbe(bool driver = true, int init = 0, int count = 1, int major = 9, int minor = 0) : ICudaProbe
    {
        public bool TryLoadDriver(out string tried)
        {
            tried = "/opt/x/libcuda.so.1, libcuda.so.1";
            return driver;
        }

        public int Init() => init;

        public int DeviceCount(out int n)
        {
            n = count;
            return 0;
        }

        public int DriverVersion(out int version)
        {
            version = 13000;
            return 0;
        }

        public (string Name, int Major, int Minor, long TotalBytes) Describe(int ordinal) => ("NVIDIA H200", major, minor, 141L << 30);
    }

    [Fact]
    public void EachMissingPieceIsNamed()
    {
        var noDriver = CudaDetection.Detect(new FakeProbe(driver: false));
        Assert.False(noDriver.Available);
        Assert.Contains("libcuda.so.1", noDriver.Reason);
        Assert.Contains("/opt/x/libcuda.so.1", noDriver.Reason);
        Assert.Contains(NativeLibraries.DirsVariable, noDriver.Reason);

        Assert.Contains("CUDA_ERROR_NO_DEVICE", CudaDetection.Detect(new FakeProbe(init: 100)).Reason);
        Assert.Contains("stub", CudaDetection.Detect(new FakeProbe(init: 34)).Reason);
        Assert.Contains("CUDA_ERROR_UNKNOWN (999)", CudaDetection.Detect(new FakeProbe(init: 999)).Reason);
        Assert.Contains("0 GPUs", CudaDetection.Detect(new FakeProbe(count: 0)).Reason);
        var old = CudaDetection.Detect(new FakeProbe(major: 7, minor: 5));
        Assert.False(old.Available);
        Assert.Contains("7.5", old.Reason);

        var h200 = CudaDetection.Detect(new FakeProbe());
        Assert.True(h200.Available);
        Assert.Equal("NVIDIA H200", h200.Name);
        Assert.Contains("compute 9.0", h200.Reason);
    }

    [Fact]
    public void AutoFallsBackToTheCpuSayingWhyAndCudaFailsNamingWhatIsMissing()
    {
        var (auto, why) = BackendFactory.Create("auto", 1, new FakeProbe(driver: false));
        using (auto)
        {
            Assert.IsType<CpuBackend>(auto);
            Assert.Contains("no usable GPU", why);
            Assert.Contains("libcuda.so.1", why);
        }

        var e = Assert.Throws<BackendUnavailableException>(() => BackendFactory.Create("cuda", 1, new FakeProbe(init: 100)));
        Assert.Contains("CUDA_ERROR_NO_DEVICE", e.Message);
        using var marker = new CpuBackend(1);
        var (chosen, cudaWhy) = BackendFactory.Create("cuda", 1, new FakeProbe(), cuda: () => marker);
        Assert.Same(marker, chosen); // a usable GPU: the CUDA backend is built
        Assert.Contains("NVIDIA H200", cudaWhy);
        var failed = Assert.Throws<BackendUnavailableException>(() => BackendFactory.Create("cuda", 1, new FakeProbe(),
            cuda: () => throw new Loom.Kernels.Cuda.Interop.CudaException("cuModuleLoadDataEx", 218, "ptxas: bad")));
        Assert.Contains("cuModuleLoadDataEx failed: CUDA_ERROR_INVALID_PTX (218)", failed.Message);
        var (autoGpu, autoWhy) = BackendFactory.Create("auto", 1, new FakeProbe(), cuda: () => throw new InvalidOperationException("auto must not build it"));
        using (autoGpu) Assert.IsType<CpuBackend>(autoGpu);
        Assert.Contains("opt-in", autoWhy);

        var (cpu, cpuWhy) = BackendFactory.Create("cpu", 1);
        using (cpu) Assert.IsType<CpuBackend>(cpu);
        Assert.StartsWith("device: cpu; cpu: ", cpuWhy);
        Assert.Contains(Loom.Kernels.Cpu.Isa.CpuIsaSelector.Label(((CpuBackend)cpu).Isa), cpuWhy);
        Assert.Throws<ArgumentException>(() => BackendFactory.Create("tpu", 1));
    }

    [SkippableFact]
    public void TheRealDriverProbeGivesAnAnswerOnThisMachine()
    {
        var info = CudaDetection.Detect();
        Skip.If(info.Available, $"a GPU is present ({info.Reason}); this test checks the no-GPU message");
        Assert.False(string.IsNullOrWhiteSpace(info.Reason));
        Assert.True(info.Reason.Contains("libcuda.so.1", StringComparison.Ordinal) || info.Reason.Contains("cuInit", StringComparison.Ordinal), info.Reason);
    }

    [Fact]
    public void LibraryCandidatesSearchTheConfiguredDirectoriesFirstNewestSonameFirst()
    {
        var c = NativeLibraries.Candidates(NativeLibraries.Cublas, ["/wheels/nvidia/cu13/lib"]).ToList();
        Assert.Equal(["/wheels/nvidia/cu13/lib/libcublas.so.13", "/wheels/nvidia/cu13/lib/libcublas.so.12", "/wheels/nvidia/cu13/lib/libcublas.so.11",
            "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"], c);
        Assert.Equal(["libcuda.so.1"], NativeLibraries.Candidates(NativeLibraries.Cuda, []));
        Assert.Throws<ArgumentException>(() => NativeLibraries.Candidates("cudnn", []).ToList());
    }

    [Fact]
    public void CudaErrorsNameTheCallAndTheResult()
    {
        var e = new CudaException("cuMemAlloc_v2", 2);
        Assert.Equal("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2)", e.Message);
        Assert.Contains("ptxas fatal", new CudaException("cuModuleLoadDataEx", 218, "ptxas fatal: bad").Message);
        Assert.Equal("CUDA_ERROR_12345", CuDriver.ResultName(12345));
    }
}
