using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LLama.Native;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Benchmarks;

internal static class QuietLlamaCpp
{
    /// <summary>llama.cpp logs every model load at length; keep only its errors.</summary>
    [ModuleInitializer]
    internal static void Install() =>
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            if (level == LLamaLogLevel.Error) Console.Error.Write(message);
        });
}

/// <summary>
/// Which of LLamaSharp's CPU builds (noavx, avx, avx2, avx512) the peer runs: the one matching the
/// ISA Loom runs, so a ratio compares like with like (an AVX2 run against llama.cpp's AVX2 build).
/// </summary>
internal static class LlamaCppVariant
{
    /// <summary>Must run before llama.cpp's library loads (the first model load).</summary>
    public static void Match(CpuIsa isa)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        NativeLibraryConfig.All.WithAvx(isa switch
        {
            CpuIsa.Avx512 => AvxLevel.Avx512,
            CpuIsa.Avx2 => AvxLevel.Avx2,
            _ => AvxLevel.None,
        });
    }

    /// <summary>The build actually mapped into this process, read from /proc/self/maps ("avx2", ...), or "unknown".</summary>
    public static string Loaded()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int at = line.IndexOf('/');
                if (at < 0 || !line.EndsWith("/libllama.so", StringComparison.Ordinal)) continue;
                var dir = Path.GetFileName(Path.GetDirectoryName(line[at..]));
                return string.IsNullOrEmpty(dir) || dir == "native" ? "default" : dir;
            }
        }
        catch (IOException)
        {
        }

        return "unknown";
    }
}
