using Loom.Kernels.Cuda;
using Loom.Kernels.Cuda.Interop;

// Regenerates the committed PTX: `dotnet run --project tests/PtxBuild -c Release -- SRC_DIR [OUT_DIR]`
// compiles each module in CudaKernels.EntriesByModule (SRC_DIR/NAME.cu plus common.cuh) with NVRTC
// for compute_80 and writes OUT_DIR/NAME.ptx (OUT_DIR defaults to SRC_DIR).
if (args.Length is < 1 or > 2)
{
    Console.Error.WriteLine("usage: Loom.PtxBuild SRC_DIR [OUT_DIR]");
    return 2;
}
if (!Nvrtc.IsAvailable(out string reason))
{
    Console.Error.WriteLine($"error: {reason}");
    return 1;
}
string src = args[0], outDir = args.Length > 1 ? args[1] : args[0];
Directory.CreateDirectory(outDir);
var (major, minor) = Nvrtc.Version();
var headers = new Dictionary<string, string> { [CudaKernels.CommonHeader] = File.ReadAllText(Path.Combine(src, CudaKernels.CommonHeader)) };
foreach (var module in CudaKernels.EntriesByModule.Keys)
{
    try
    {
        var ptx = Nvrtc.CompileToPtx(File.ReadAllText(Path.Combine(src, module + ".cu")), module + ".cu", headers);
        File.WriteAllText(Path.Combine(outDir, module + ".ptx"), ptx);
        Console.WriteLine($"{module}.cu -> {module}.ptx ({ptx.Length} chars, NVRTC {major}.{minor})");
    }
    catch (NvrtcException e)
    {
        Console.Error.WriteLine($"error: {e.Message}");
        return 1;
    }
}
return 0;
