using System.CommandLine;
using Loom.Kernels.Cuda;
using Loom.Tools.Cuda;

namespace Loom.Tools.Cli;

/// <summary>
/// `ptx build SRC_DIR [OUT_DIR]`: regenerates the committed PTX. Compiles each module in
/// CudaKernels.EntriesByModule (SRC_DIR/NAME.cu plus common.cuh) with NVRTC for compute_80 and
/// writes OUT_DIR/NAME.ptx (OUT_DIR defaults to SRC_DIR); scripts/check-ptx.sh builds into a
/// temporary folder and compares.
/// </summary>
internal static class PtxBuildCommand
{
    public static Command Create()
    {
        var src = new Argument<string>("src-dir") { Description = "folder holding the .cu files and common.cuh (src/Kernels/Cuda/Kernels)" };
        var output = new Argument<string?>("out-dir") { Description = "where to write the .ptx files (default: src-dir)", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("build", "Compile the CUDA kernels to PTX with NVRTC") { src, output };
        cmd.SetAction(r => Run(r.GetValue(src)!, r.GetValue(output)));
        return cmd;
    }

    private static int Run(string src, string? outDir)
    {
        if (!Nvrtc.IsAvailable(out string reason))
        {
            Console.Error.WriteLine($"error: {reason}");
            return 1;
        }
        outDir ??= src;
        Directory.CreateDirectory(outDir);
        var (major, minor) = Nvrtc.Version();
        var common = Path.Combine(src, CudaKernels.CommonHeader);
        if (!File.Exists(common))
        {
            Console.Error.WriteLine($"error: {common} not found (SRC_DIR is the folder of the .cu files)");
            return 2;
        }
        var headers = new Dictionary<string, string> { [CudaKernels.CommonHeader] = File.ReadAllText(common) };
        foreach (var module in CudaKernels.EntriesByModule.Keys)
        {
            try
            {
                var ptx = Nvrtc.CompileToPtx(File.ReadAllText(Path.Combine(src, module + ".cu")), module + ".cu", headers);
                File.WriteAllText(Path.Combine(outDir, module + ".ptx"), ptx);
                Console.WriteLine($"{module}.cu -> {module}.ptx ({ptx.Length} chars, NVRTC {major}.{minor})");
            }
            catch (Exception e) when (e is NvrtcException or IOException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        }
        return 0;
    }
}
