using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cuda;
using Loom.Silo.Models;

namespace Loom.GpuCheck;

/// <summary>
/// The whole device run, with the backends passed in so the CPU tests can drive it: detection,
/// one device backend, every op against the CPU, device sampling, end-to-end logits, an engine
/// run, then llama3-8b throughput. Each failure is a named FAIL line; the run always ends with
/// "N passed, N failed" and then the figures.
/// </summary>
public static class GpuCheckRun
{
    public const string ResultFile = "gpu-check.txt";

    public static int Run(GpuCheckOptions o, CheckLog log, Func<CudaDeviceInfo> detect, Func<IBackend> createDevice, Func<IBackend> createCpu)
    {
        var found = new Found();
        try { RunChecks(o, log, detect, createDevice, createCpu, found); }
        catch (Exception e)
        {
            // Disposing a backend can throw too: still a named failure, still a summary.
            log.Fail("harness", e);
        }
        // Only here, after the backends are disposed, so no failure can follow the summary.
        return Finish(o, log, found.DeviceName, found.Figures);
    }

    /// <summary>What the checks learnt that the figures need, kept even when a later step throws.</summary>
    private sealed class Found
    {
        public string? DeviceName;
        public ThroughputFigures? Figures;
    }

    private static void RunChecks(GpuCheckOptions o, CheckLog log, Func<CudaDeviceInfo> detect, Func<IBackend> createDevice, Func<IBackend> createCpu, Found found)
    {
        var gpu = log.Run("gpu detection", detect);
        if (gpu is null) return;
        log.Info($"GPU: {gpu.Reason}");
        if (!gpu.Available)
        {
            // Off the device machine that is the expected outcome; on it (--require-gpu) it is the first failure.
            if (o.RequireGpu) log.Fail("gpu detection", gpu.Reason);
            else log.Info("no GPU: nothing to check");
            return;
        }
        found.DeviceName = gpu.Name;
        // One device backend for the whole run. A second one made after the first was disposed
        // would retain a primary context that the first's cuDevicePrimaryCtxRelease may have
        // reset under cuBLAS.
        using var device = log.Run("device backend", createDevice);
        if (device is null)
        {
            log.Info("skipped: ops, sampling, end-to-end, engine, throughput (no device backend)");
            return;
        }
        log.Info($"backend: {device.Name}");
        using var cpu = log.Run("cpu backend", createCpu);
        if (cpu is null) return;

        var checks = new Checks(log, device, cpu);
        checks.Ops();
        checks.Sampling((IDeviceSampler)device);
        if (log.Run("tiny model", () => Checks.TinyModel(o.ModelRoot)) is { } tiny)
            log.Run("tiny model on both backends", () =>
            {
                using var a = LlamaModel.Load(tiny, cpu);
                using var g = LlamaModel.Load(tiny, device);
                checks.EndToEnd(a, g);
                EngineRun.Check(log, a, g);
            });
        if (!o.Quick) found.Figures = log.Run("throughput llama3-8b", () => Throughput.Run(device, o.ModelRoot, log));
    }

    /// <summary>Ends the run with <see cref="Summarize"/>, unless the watchdog already has (then the process is exiting).</summary>
    public static int Finish(GpuCheckOptions o, CheckLog log, string? deviceName, ThroughputFigures? figures) =>
        log.TryFinish() ? Summarize(o, log, deviceName, figures) : 1;

    /// <summary>The summary line, the figures (when a device was found), and the small result file under --out.</summary>
    public static int Summarize(GpuCheckOptions o, CheckLog log, string? deviceName, ThroughputFigures? figures)
    {
        log.Info(log.Summary);
        if (deviceName is not null)
            foreach (var line in HbmTable.FigureLines(deviceName, figures)) log.Info(line);
        if (o.OutDir is { } outDir)
        {
            try
            {
                Directory.CreateDirectory(outDir);
                File.WriteAllLines(Path.Combine(outDir, ResultFile), log.Lines);
            }
            catch (Exception e) { Console.Error.WriteLine($"warning: could not write {Path.Combine(outDir, ResultFile)}: {e.Message}"); }
        }
        return log.Failed == 0 ? 0 : 1;
    }
}
