using Loom.GpuCheck;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cuda;

// loom-gpu-check [--quick] [--require-gpu] [--out DIR] [--models DIR] [--deadline SECONDS] [--cpu-standin]:
// every CUDA op against the CPU backend, device sampling, end-to-end logits and an engine run on
// a small generated model, and decode throughput on llama3-8b generated under --models (default
// /tmp/loom-gpu-check; never under --out, which gets only the small result file). Prints
// "N passed, N failed", then the figures. With no GPU it says why and exits 0, unless --require-gpu.
var log = new CheckLog(Console.Out);
GpuCheckOptions options;
try { options = GpuCheckOptions.Parse(args, Path.GetTempPath()); }
catch (Exception e)
{
    log.Fail("arguments", e.Message);
    log.Info(log.Summary);
    return 2;
}
log.Info($"models: {options.ModelRoot}; results: {options.OutDir ?? "(stdout only)"}");
try
{
    // NVRTC is not needed on the device; when present its version line shows the library search (LOOM_CUDA_LIB_DIRS) works in this native image.
    if (Loom.Tools.Cuda.Nvrtc.IsAvailable(out _))
    {
        var (major, minor) = Loom.Tools.Cuda.Nvrtc.Version();
        log.Info($"NVRTC: {major}.{minor}");
    }
}
catch (Exception e) { log.Info($"NVRTC probe failed: {e.Message}"); }

// A crash on another thread or a hang must still end with a named failure and the summary line
// (once: if the run printed its summary first, there is nothing to add).
void Abandon(string name, string detail)
{
    if (!log.TryFinish()) return;
    log.Fail(name, detail);
    GpuCheckRun.Summarize(options, log, null, null);
    Environment.Exit(1);
}
AppDomain.CurrentDomain.UnhandledException += (_, e) => Abandon("unhandled", e.ExceptionObject is Exception ex ? CheckLog.Describe(ex) : $"{e.ExceptionObject}");
using var watchdog = options.DeadlineSeconds > 0
    ? new Timer(_ => Abandon("deadline", log.DeadlineFailure(options.DeadlineSeconds)), null, TimeSpan.FromSeconds(options.DeadlineSeconds), Timeout.InfiniteTimeSpan)
    : null;

int rc = options.CpuStandIn
    ? GpuCheckRun.Run(options, log, () => new CudaDeviceInfo(true, "CPU stand-in (--cpu-standin)", "CPU stand-in"),
        () => new CpuBackend(Environment.ProcessorCount), () => new CpuBackend(Environment.ProcessorCount))
    : GpuCheckRun.Run(options, log, () => CudaDetection.Detect(), () => new CudaBackend(), () => new CpuBackend(Environment.ProcessorCount));
return rc;
