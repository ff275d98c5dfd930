using System.Diagnostics;
using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cuda;
using Loom.Silo.Models;

// loom-gpu-check [--quick] [--out DIR]: every CUDA op against the CPU backend, end-to-end logits of a
// generated model, and decode throughput on llama3-8b generated on the device. Prints
// "N passed, N failed" and the figures; with no usable GPU it says why and exits 0.
// NVRTC is not needed on the device; when present its version line shows the P/Invoke resolver works in this native image.
if (Loom.Kernels.Cuda.Interop.Nvrtc.IsAvailable(out _)) Console.WriteLine($"NVRTC: {Loom.Kernels.Cuda.Interop.Nvrtc.Version()}");
var gpu = CudaDetection.Detect();
Console.WriteLine($"GPU: {gpu.Reason}");
if (!gpu.Available)
{
    Console.WriteLine("0 passed, 0 failed (no GPU: nothing to check)");
    return 0;
}
bool quick = args.Contains("--quick");
string work = args.SkipWhile(a => a != "--out").Skip(1).FirstOrDefault() ?? Path.Combine(Path.GetTempPath(), "loom-gpu-check");
Directory.CreateDirectory(work);
var checks = new Loom.GpuCheck.Checks();
using (var cuda = new CudaBackend())
using (var cpu = new CpuBackend(Environment.ProcessorCount))
{
    Console.WriteLine($"backend: {cuda.Name}");
    checks.Ops(cuda, cpu);
    checks.Sampling(cuda, cpu);
    checks.EndToEnd(cuda, cpu, work);
}
if (!quick)
{
    try { Loom.GpuCheck.Throughput.Run(work, checks); }
    catch (Exception e) { checks.Fail("throughput llama3-8b", e.ToString()); }
}
Console.WriteLine($"{checks.Passed} passed, {checks.Failed} failed");
return checks.Failed == 0 ? 0 : 1;
