using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Loom.Kernels.Cuda.Interop;

/// <summary>
/// Finds the NVIDIA libraries for every P/Invoke in this assembly (one resolver per assembly is
/// all .NET allows). Logical names map to sonames: a directory list from LOOM_CUDA_LIB_DIRS first
/// (':'-separated; on the GPU machine cuBLAS and NCCL live in Python wheels), then the loader's
/// default search, newest soname first. cuBLASLt loads before cuBLAS, which links against it.
/// </summary>
public static class NativeLibraries
{
    public const string Cuda = "cuda";
    public const string Cublas = "cublas";
    public const string CublasLt = "cublasLt";
    public const string Nccl = "nccl";

    public const string DirsVariable = "LOOM_CUDA_LIB_DIRS";

    /// <summary>Sonames tried for each logical name, newest first.</summary>
    public static IReadOnlyDictionary<string, string[]> Sonames { get; } = new Dictionary<string, string[]>
    {
        [Cuda] = ["libcuda.so.1"],
        [CublasLt] = ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"],
        [Cublas] = ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"],
        [Nccl] = ["libnccl.so.2"],
    };

    private static readonly Dictionary<string, nint> Loaded = [];

    // A library module initializer on purpose: the resolver must be in place before any P/Invoke
    // in this assembly binds, whoever calls first, and there is one assembly-wide slot for it.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() => NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path) =>
        Sonames.ContainsKey(name) && TryLoad(name, out var h, out _) ? h : 0;

    /// <summary>The directories searched before the loader's default paths.</summary>
    public static IReadOnlyList<string> SearchDirectories() =>
        (Environment.GetEnvironmentVariable(DirsVariable) ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Loads a logical library; on failure <paramref name="tried"/> lists every candidate path tried.</summary>
    public static bool TryLoad(string name, out nint handle, out string tried)
    {
        lock (Loaded)
        {
            if (Loaded.TryGetValue(name, out handle))
            {
                tried = "";
                return true;
            }
        }

        if (name == Cublas) TryLoad(CublasLt, out _, out _);
        var candidates = Candidates(name).ToList();
        foreach (var candidate in candidates)
        {
            if (NativeLibrary.TryLoad(candidate, out handle))
            {
                lock (Loaded) Loaded[name] = handle;
                tried = "";
                return true;
            }
        }

        tried = string.Join(", ", candidates);
        handle = 0;
        return false;
    }

    /// <summary>Candidate paths in search order: each soname in each LOOM_CUDA_LIB_DIRS entry, then each bare soname.</summary>
    public static IEnumerable<string> Candidates(string name) => Candidates(name, SearchDirectories());

    public static IEnumerable<string> Candidates(string name, IReadOnlyList<string> dirs)
    {
        var sonames = Sonames.TryGetValue(name, out var s) ? s : throw new ArgumentException($"unknown NVIDIA library '{name}'", nameof(name));
        foreach (var dir in dirs)
            foreach (var so in sonames) yield return Path.Combine(dir, so);
        foreach (var so in sonames) yield return so;
    }
}
