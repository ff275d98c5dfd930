using System.Runtime.InteropServices;
using System.Text;

namespace Loom.Kernels.Cuda.Interop;

/// <summary>An NVRTC failure, with the compiler's log when there is one.</summary>
public sealed class NvrtcException(string call, int result, string log = "")
    : Exception($"{call} failed: NVRTC error {result}{(log.Length > 0 ? ":\n" + log : "")}")
{
    public string Log { get; } = log;
}

/// <summary>
/// NVRTC (libnvrtc, no GPU needed) turns the header-free CUDA C in Cuda/Kernels into PTX; the PTX
/// build tool and the CI check use it, the engine only loads the committed PTX.
/// </summary>
public static unsafe class Nvrtc
{
    private const string Lib = NativeLibraries.Nvrtc;

    [DllImport(Lib)] private static extern int nvrtcVersion(out int major, out int minor);
    [DllImport(Lib)] private static extern int nvrtcCreateProgram(out nint prog, byte* src, byte* name, int numHeaders, byte** headers, byte** includeNames);
    [DllImport(Lib)] private static extern int nvrtcCompileProgram(nint prog, int numOptions, byte** options);
    [DllImport(Lib)] private static extern int nvrtcGetPTXSize(nint prog, out nuint size);
    [DllImport(Lib)] private static extern int nvrtcGetPTX(nint prog, byte* ptx);
    [DllImport(Lib)] private static extern int nvrtcGetProgramLogSize(nint prog, out nuint size);
    [DllImport(Lib)] private static extern int nvrtcGetProgramLog(nint prog, byte* log);
    [DllImport(Lib)] private static extern int nvrtcDestroyProgram(ref nint prog);

    /// <summary>The options every kernel file is compiled with: PTX for compute_80, which the driver JITs for sm_80 and sm_90.</summary>
    public static IReadOnlyList<string> DefaultOptions { get; } = ["--gpu-architecture=compute_80"];

    public static bool IsAvailable(out string reason)
    {
        if (NativeLibraries.TryLoad(NativeLibraries.Nvrtc, out _, out string tried))
        {
            reason = "";
            return true;
        }
        reason = $"libnvrtc was not found (tried {tried}); apt-get install libnvrtc11.2 from Debian non-free";
        return false;
    }

    public static (int Major, int Minor) Version()
    {
        Check(nvrtcVersion(out int major, out int minor), nameof(nvrtcVersion));
        return (major, minor);
    }

    /// <summary>Compiles one source with the given headers (name → text) to PTX text.</summary>
    public static string CompileToPtx(string source, string name, IReadOnlyDictionary<string, string> headers, IReadOnlyList<string>? options = null)
    {
        options ??= DefaultOptions;
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
            Check(nvrtcCreateProgram(out prog, Pin(source), Pin(name), headerNames.Length, hdrs, incs), nameof(nvrtcCreateProgram));
            byte** opts = stackalloc byte*[Math.Max(1, options.Count)];
            for (int i = 0; i < options.Count; i++) opts[i] = Pin(options[i]);
            int r = nvrtcCompileProgram(prog, options.Count, opts);
            if (r != 0) throw new NvrtcException($"nvrtcCompileProgram({name})", r, Log(prog));
            Check(nvrtcGetPTXSize(prog, out nuint size), nameof(nvrtcGetPTXSize));
            var ptx = new byte[(int)size];
            fixed (byte* p = ptx) Check(nvrtcGetPTX(prog, p), nameof(nvrtcGetPTX));
            return Encoding.UTF8.GetString(ptx).TrimEnd('\0');
        }
        finally
        {
            if (prog != 0) nvrtcDestroyProgram(ref prog);
            foreach (var h in pins) h.Free();
        }
    }

    private static string Log(nint prog)
    {
        if (nvrtcGetProgramLogSize(prog, out nuint size) != 0 || size <= 1) return "";
        var log = new byte[(int)size];
        fixed (byte* p = log) nvrtcGetProgramLog(prog, p);
        return Encoding.UTF8.GetString(log).TrimEnd('\0').Trim();
    }

    private static void Check(int result, string call)
    {
        if (result != 0) throw new NvrtcException(call, result);
    }
}
