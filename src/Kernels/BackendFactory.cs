using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Isa;
using Loom.Kernels.Cuda;

namespace Loom.Kernels;

/// <summary>The requested device cannot be used; the message says what is missing.</summary>
public sealed class BackendUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Picks the backend for `device: auto | cpu | cuda`. cuda insists on the GPU and fails naming what
/// is missing. auto runs on the CPU and says why: with no usable GPU that is the only choice, and
/// with one it is because <see cref="CudaBackend"/> has not yet passed tests/GpuCheck on hardware
/// (no device was lent while it was written), so it is opt-in through `device: cuda` until then.
/// </summary>
public static class BackendFactory
{
    /// <param name="cpuIsa">`engine.cpu_isa` (auto, avx512, avx2, neon, portable) for a CPU backend.</param>
    /// <exception cref="CpuIsaUnavailableException">A forced ISA this CPU lacks.</exception>
    public static (IBackend Backend, string Why) Create(string device, int threads, ICudaProbe? probe = null, Func<IBackend>? cuda = null,
        string? cpuIsa = null)
    {
        cuda ??= () => new CudaBackend();
        switch (device)
        {
            case "cpu":
                return Cpu("device: cpu");
            case "cuda":
            {
                var gpu = CudaDetection.Detect(probe);
                if (!gpu.Available) throw new BackendUnavailableException($"device: cuda, but no usable GPU: {gpu.Reason}");
                try { return (cuda(), $"device: cuda on {gpu.Reason}"); }
                catch (Exception e) when (e is Cuda.Interop.CudaException or Cuda.Interop.CublasException or DllNotFoundException)
                {
                    throw new BackendUnavailableException($"device: cuda found {gpu.Reason}, but starting the CUDA backend failed: {e.Message}", e);
                }
            }
            case "auto":
            {
                var gpu = CudaDetection.Detect(probe);
                return Cpu(gpu.Available
                    ? $"device: auto found {gpu.Reason}; the CUDA backend is opt-in (device: cuda) until it has passed tests/GpuCheck on hardware: running on the CPU"
                    : $"device: auto: no usable GPU ({gpu.Reason}); running on the CPU");
            }
            default:
                throw new ArgumentException($"device must be auto, cpu or cuda, got '{device}'", nameof(device));
        }

        (IBackend, string) Cpu(string why)
        {
            var backend = new CpuBackend(threads, ForcedIsa(cpuIsa));
            return (backend, $"{why}; {backend.Name}");
        }
    }

    /// <summary>The ISA an `engine.cpu_isa` value forces, or null for auto; throws naming the setting when the CPU lacks it.</summary>
    public static CpuIsa? ForcedIsa(string? cpuIsa) =>
        cpuIsa is null || cpuIsa.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase) || cpuIsa.Trim().Length == 0
            ? null
            : CpuIsaSelector.Resolve(cpuIsa).Isa;

    /// <summary>
    /// Backends and communicators for a tensor-parallel group of <paramref name="worldSize"/> ranks
    /// in this process: on CUDA one GPU per rank (ordinals 0..worldSize-1) joined by NCCL; on the CPU
    /// <paramref name="threads"/> split over the ranks, joined by the in-process all-reduce.
    /// </summary>
    public static (IBackend[] Backends, Collectives.ICommunicator[] Communicators, string Why) CreateGroup(string device, int threads, int worldSize,
        ICudaProbe? probe = null, string? cpuIsa = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(worldSize);
        if (device == "cuda")
        {
            var gpu = CudaDetection.Detect(probe);
            if (!gpu.Available) throw new BackendUnavailableException($"device: cuda, but no usable GPU: {gpu.Reason}");
            var backends = new List<CudaBackend>();
            try
            {
                for (int r = 0; r < worldSize; r++) backends.Add(new CudaBackend(r));
                var comms = Collectives.NcclCommunicator.CreateGroup(backends);
                return ([.. backends], [.. comms], $"device: cuda, tensor parallel over {worldSize} GPUs ({gpu.Reason}) with NCCL");
            }
            catch (Exception e) when (e is Cuda.Interop.CudaException or Cuda.Interop.CublasException or Collectives.NcclException or DllNotFoundException)
            {
                foreach (var b in backends) b.Dispose();
                throw new BackendUnavailableException($"device: cuda with tensor_parallel_size {worldSize}: {e.Message}", e);
            }
        }
        if (device is not ("cpu" or "auto")) throw new ArgumentException($"device must be auto, cpu or cuda, got '{device}'", nameof(device));
        int total = threads > 0 ? threads : Environment.ProcessorCount;
        int perRank = Math.Max(1, total / worldSize);
        var isa = ForcedIsa(cpuIsa);
        var cpus = Enumerable.Range(0, worldSize).Select(_ => new CpuBackend(perRank, isa)).ToArray();
        return ([.. cpus], Collectives.InProcessCommunicator.CreateGroup(worldSize),
            $"device: {device}: tensor parallel over {worldSize} CPU shards of {perRank} thread(s), in-process all-reduce; {cpus[0].Name}");
    }
}

