using Loom.Kernels.Cpu;
using Loom.Kernels.Cuda;

namespace Loom.Kernels;

/// <summary>The requested device cannot be used; the message says what is missing.</summary>
public sealed class BackendUnavailableException(string message) : Exception(message);

/// <summary>
/// Picks the backend for `device: auto | cpu | cuda`. auto takes a usable GPU and otherwise the CPU,
/// saying why; cuda insists and fails naming what is missing. The CUDA backend itself (PTX kernels,
/// cuBLAS) is not in this build yet, so a detected GPU is reported and not used.
/// </summary>
public static class BackendFactory
{
    public static (IBackend Backend, string Why) Create(string device, int threads, ICudaProbe? probe = null)
    {
        switch (device)
        {
            case "cpu":
                return (new CpuBackend(threads), "device: cpu");
            case "cuda":
            {
                var gpu = CudaDetection.Detect(probe);
                if (!gpu.Available) throw new BackendUnavailableException($"device: cuda, but no usable GPU: {gpu.Reason}");
                throw new BackendUnavailableException($"device: cuda found {gpu.Reason}, but the CUDA backend is not part of this build yet; use device: cpu or auto");
            }
            case "auto":
            {
                var gpu = CudaDetection.Detect(probe);
                return (new CpuBackend(threads), gpu.Available
                    ? $"device: auto found {gpu.Reason}, but the CUDA backend is not part of this build yet: running on the CPU"
                    : $"device: auto: no usable GPU ({gpu.Reason}); running on the CPU");
            }
            default:
                throw new ArgumentException($"device must be auto, cpu or cuda, got '{device}'", nameof(device));
        }
    }
}
