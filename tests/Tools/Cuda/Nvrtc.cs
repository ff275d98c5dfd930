using System.Runtime.InteropServices;
using System.Text;
using Loom.Kernels.Cuda.Interop;

namespace Loom.Tools.Cuda;

/// <summary>An NVRTC failure, with the compiler's log when there is one.</summary>
public sealed class NvrtcException(string call, int result, string log = "")
    : Exception($"{call} failed: NVRTC error {result}{(log.Length > 0 ? ":\n" + log : "")}")
{
    public string Log { get; } = log;
}

/// <summary>
/// NVRTC (libnvrtc, no GPU needed) turns the header-free CUDA C in src/Kernels/Cuda/Kernels into
/// PTX; the PTX build and its check use it, the engine only loads the committed PTX, so it lives
/// here and not in the runtime.
/// </summary>
/// <remarks>
/// Bound through function pointers from the library handle rather than [DllImport]: the runtime's
/// import resolver serves the Kernels assembly only, and this file is compiled into several
/// (the tools, the GPU check, the kernel tests). The search follows the runtime's: LOOM_CUDA_LIB_DIRS
/// first, then the loader's default paths, newest soname first.
/// </remarks>
public static unsafe class Nvrtc
{
    /// <summary>Sonames tried, newest first.</summary>
    public static IReadOnlyList<string> Sonames { get; } = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"];

    private static readonly Lazy<(nint Handle, string Tried)> Library = new(Load);

    /// <summary>The options every kernel file is compiled with: PTX for compute_80, which the driver JITs for sm_80 and sm_90.</summary>
    public static IReadOnlyList<string> DefaultOptions { get; } = ["--gpu-architecture=compute_80"];

    public static bool IsAvailable(out string reason)
    {
        var (handle, tried) = Library.Value;
        reason = handle != 0 ? "" : $"libnvrtc was not found (tried {tried}); apt-get install libnvrtc11.2 from Debian non-free";
        return handle != 0;
    }

    public static (int Major, int Minor) Version()
    {
        int major, minor;
        Check(((delegate* unmanaged<int*, int*, int>)Export("nvrtcVersion"))(&major, &minor), "nvrtcVersion");
        return (major, minor);
    }

    /// <summary>Compiles one source with the given headers (name → text) to PTX text.</summary>
    public static string CompileToPtx(string source, string name, IReadOnlyDictionary<string, string> headers, IReadOnlyList<string>? options = null)
    {
        options ??= DefaultOptions;
        var create = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)Export("nvrtcCreateProgram");
        var compile = (delegate* unmanaged<nint, int, byte**, int>)Export("nvrtcCompileProgram");
        var ptxSize = (delegate* unmanaged<nint, nuint*, int>)Export("nvrtcGetPTXSize");
        var getPtx = (delegate* unmanaged<nint, byte*, int>)Export("nvrtcGetPTX");
        var destroy = (delegate* unmanaged<nint*, int>)Export("nvrtcDestroyProgram");
        var pins = new List<GCHandle>();
        byte* Pin(string s)
        {
            var h = GCHandle.Alloc(Encoding.UTF8.GetBytes(s + "\0"), GCHandleType.Pinned);
            pins.Add(h);
            return (byte*)h.AddrOfPinnedObject();
        }
        nint prog = 0;
        try
        {
            var headerNames = headers.Keys.ToArray();
            byte** hdrs = stackalloc byte*[Math.Max(1, headerNames.Length)];
            byte** incs = stackalloc byte*[Math.Max(1, headerNames.Length)];
            for (int i = 0; i < headerNames.Length; i++)
            {
                hdrs[i] = Pin(headers[headerNames[i]]);
                incs[i] = Pin(headerNames[i]);
            }
            Check(create(&prog, Pin(source), Pin(name), headerNames.Length, hdrs, incs), "nvrtcCreateProgram");
            byte** opts = stackalloc byte*[Math.Max(1, options.Count)];
            for (int i = 0; i < options.Count; i++) opts[i] = Pin(options[i]);
            int r = compile(prog, options.Count, opts);
            if (r != 0) throw new NvrtcException($"nvrtcCompileProgram({name})", r, Log(prog));
            nuint size;
            Check(ptxSize(prog, &size), "nvrtcGetPTXSize");
            var ptx = new byte[(int)size];
            fixed (byte* p = ptx) Check(getPtx(prog, p), "nvrtcGetPTX");
            return Encoding.UTF8.GetString(ptx).TrimEnd('\0');
        }
        finally
        {
            if (prog != 0) destroy(&prog);
            foreach (var h in pins) h.Free();
        }
    }

    private static (nint, string) Load()
    {
        var candidates = NativeLibraries.SearchDirectories().SelectMany(d => Sonames.Select(so => Path.Combine(d, so))).Concat(Sonames).ToList();
        foreach (var candidate in candidates)
            if (NativeLibrary.TryLoad(candidate, out var handle)) return (handle, "");
        return (0, string.Join(", ", candidates));
    }

    private static nint Export(string symbol)
    {
        if (!IsAvailable(out string reason)) throw new DllNotFoundException(reason);
        return NativeLibrary.GetExport(Library.Value.Handle, symbol);
    }

    private static string Log(nint prog)
    {
        var logSize = (delegate* unmanaged<nint, nuint*, int>)Export("nvrtcGetProgramLogSize");
        var getLog = (delegate* unmanaged<nint, byte*, int>)Export("nvrtcGetProgramLog");
        nuint size;
        if (logSize(prog, &size) != 0 || size <= 1) return "";
        var log = new byte[(int)size];
        fixed (byte* p = log) getLog(prog, p);
        return Encoding.UTF8.GetString(log).TrimEnd('\0').Trim();
    }

    private static void Check(int result, string call)
    {
        if (result != 0) throw new NvrtcException(call, result);
    }
}
