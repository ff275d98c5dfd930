using Loom.Kernels.Cuda.Interop;

namespace Loom.Kernels.Cuda;

/// <summary>What <see cref="CudaDetection"/> found: a usable GPU, or the reason there is none.</summary>
public sealed record CudaDeviceInfo(bool Available, string Reason, string Name = "", int ComputeMajor = 0, int ComputeMinor = 0, long TotalBytes = 0, int DriverVersion = 0);

/// <summary>The driver calls detection needs, behind an interface so the messages are testable without a GPU.</summary>
public interface ICudaProbe
{
    /// <summary>Loads libcuda; false with the paths tried.</summary>
    bool TryLoadDriver(out string tried);

    int Init();
    int DeviceCount(out int count);
    int DriverVersion(out int version);
    (string Name, int Major, int Minor, long TotalBytes) Describe(int ordinal);
}

/// <summary>
/// Is there a GPU this process can use? Loads libcuda.so.1 (never the bare .so, which only the
/// toolkit ships), calls cuInit and counts devices. Each failure becomes a sentence naming what is
/// missing, for `device: auto` to log while it falls back to the CPU and for `device: cuda` to fail with.
/// </summary>
public static class CudaDetection
{
    public static CudaDeviceInfo Detect(ICudaProbe? probe = null)
    {
        probe ??= new DriverProbe();
        if (!probe.TryLoadDriver(out string tried))
            return new(false, $"libcuda.so.1 (the NVIDIA driver) was not found; tried {tried}. Install the NVIDIA driver " +
                $"(in Kubernetes: the NVIDIA container toolkit) or add its folder to {NativeLibraries.DirsVariable}.");
        int r = probe.Init();
        if (r == 100) return new(false, "cuInit: CUDA_ERROR_NO_DEVICE (100): the NVIDIA driver is installed but sees no GPU");
        if (r == 34) return new(false, "cuInit: CUDA_ERROR_STUB_LIBRARY (34): libcuda.so.1 is the toolkit's stub, not a real driver");
        if (r != 0) return new(false, $"cuInit failed: {CuDriver.ResultName(r)} ({r})");
        r = probe.DeviceCount(out int count);
        if (r != 0) return new(false, $"cuDeviceGetCount failed: {CuDriver.ResultName(r)} ({r})");
        if (count == 0) return new(false, "the NVIDIA driver reports 0 GPUs");
        probe.DriverVersion(out int version);
        var (name, major, minor, total) = probe.Describe(0);
        if (major < 8)
            return new(false, $"{name} has compute capability {major}.{minor}; Loom's kernels need 8.0 or newer (bf16)", name, major, minor, total, version);
        return new(true, $"{name} (compute {major}.{minor}, {total / (1L << 30)} GiB, driver {version / 1000}.{version % 1000 / 10})",
            name, major, minor, total, version);
    }

    /// <summary>The real driver.</summary>
    private sealed class DriverProbe : ICudaProbe
    {
        public bool TryLoadDriver(out string tried) => NativeLibraries.TryLoad(NativeLibraries.Cuda, out _, out tried);
        public int Init() => CuDriver.cuInit(0);
        public int DeviceCount(out int count) => CuDriver.cuDeviceGetCount(out count);
        public int DriverVersion(out int version) => CuDriver.cuDriverGetVersion(out version);

        public (string Name, int Major, int Minor, long TotalBytes) Describe(int ordinal)
        {
            CuDriver.Check(CuDriver.cuDeviceGet(out int dev, ordinal), nameof(CuDriver.cuDeviceGet));
            CuDriver.Check(CuDriver.cuDeviceGetAttribute(out int major, CuDriver.AttributeComputeCapabilityMajor, dev), nameof(CuDriver.cuDeviceGetAttribute));
            CuDriver.Check(CuDriver.cuDeviceGetAttribute(out int minor, CuDriver.AttributeComputeCapabilityMinor, dev), nameof(CuDriver.cuDeviceGetAttribute));
            CuDriver.Check(CuDriver.cuDeviceTotalMem_v2(out nuint total, dev), nameof(CuDriver.cuDeviceTotalMem_v2));
            return (CuDriver.DeviceName(dev), major, minor, (long)total);
        }
    }
}
