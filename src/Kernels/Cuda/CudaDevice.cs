using Loom.Kernels.Cuda.Interop;

namespace Loom.Kernels.Cuda;

/// <summary>
/// One GPU as the backend uses it: its primary context (made current on the calling thread by
/// <see cref="MakeCurrent"/>), one stream, a cuBLAS handle on that stream and the PTX modules.
/// </summary>
internal sealed unsafe class CudaDevice : IDisposable
{
    private readonly int _ordinal;
    private readonly Dictionary<string, nint> _functions = [];
    private readonly List<nint> _modules = [];

    public CudaDevice(int ordinal = 0)
    {
        _ordinal = ordinal;
        CuDriver.Check(CuDriver.cuInit(0), nameof(CuDriver.cuInit));
        CuDriver.Check(CuDriver.cuDeviceGet(out int dev, ordinal), nameof(CuDriver.cuDeviceGet));
        Device = dev;
        CuDriver.Check(CuDriver.cuDevicePrimaryCtxRetain(out nint ctx, dev), nameof(CuDriver.cuDevicePrimaryCtxRetain));
        Context = ctx;
        KeepPrimaryContext(dev);
        MakeCurrent();
        CuDriver.Check(CuDriver.cuStreamCreate(out nint stream, 0), nameof(CuDriver.cuStreamCreate));
        Stream = stream;
        CuBlas.Check(CuBlas.cublasCreate_v2(out nint blas), nameof(CuBlas.cublasCreate_v2));
        Blas = blas;
        CuBlas.Check(CuBlas.cublasSetStream_v2(blas, stream), nameof(CuBlas.cublasSetStream_v2));
        foreach (var (module, entries) in CudaKernels.EntriesByModule)
        {
            nint m = CuDriver.LoadModule(CudaKernels.Ptx(module));
            _modules.Add(m);
            foreach (var e in entries)
            {
                CuDriver.Check(CuDriver.cuModuleGetFunction(out nint f, m, e), $"cuModuleGetFunction({e})");
                _functions[e] = f;
            }
        }
        Name = CuDriver.DeviceName(dev);
    }

    private static readonly HashSet<int> Kept = [];

    /// <summary>
    /// Holds one extra primary-context reference per device for the life of the process. Without
    /// it, disposing the last backend drops the count to zero and the driver destroys the context;
    /// a backend made later (a worker restart, a second check) would get a fresh context while
    /// cuBLAS may still hold per-context state from the old one.
    /// </summary>
    private static void KeepPrimaryContext(int dev)
    {
        lock (Kept)
        {
            if (Kept.Contains(dev)) return;
            CuDriver.Check(CuDriver.cuDevicePrimaryCtxRetain(out _, dev), nameof(CuDriver.cuDevicePrimaryCtxRetain));
            Kept.Add(dev);
        }
    }

    public int Device { get; }
    public nint Context { get; }
    public nint Stream { get; }
    public nint Blas { get; }
    public string Name { get; }

    /// <summary>The driver keeps the current context per thread: every entry point calls this first.</summary>
    public void MakeCurrent() => CuDriver.Check(CuDriver.cuCtxSetCurrent(Context), nameof(CuDriver.cuCtxSetCurrent));

    public nint Function(string name) => _functions.TryGetValue(name, out var f) ? f : throw new KeyNotFoundException($"kernel '{name}' is not in the loaded PTX");

    public nint Alloc(long bytes)
    {
        MakeCurrent();
        CuDriver.Check(CuDriver.cuMemAlloc_v2(out nint p, (nuint)Math.Max(bytes, 1)), nameof(CuDriver.cuMemAlloc_v2));
        CuDriver.Check(CuDriver.cuMemsetD8_v2(p, 0, (nuint)Math.Max(bytes, 1)), nameof(CuDriver.cuMemsetD8_v2));
        return p;
    }

    public void Free(nint p)
    {
        MakeCurrent();
        CuDriver.cuMemFree_v2(p);
    }

    /// <summary>Launches <paramref name="kernel"/> with each argument boxed as it appears in the .cu signature (nint pointers, int, long, float).</summary>
    public void Launch(string kernel, LaunchShape shape, params object[] args)
    {
        CudaLaunch.Validate(kernel, shape);
        var slots = stackalloc long[args.Length];
        var ptrs = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            slots[i] = 0;
            switch (args[i])
            {
                case nint p: slots[i] = p; break;
                case int v: *(int*)(slots + i) = v; break;
                case long v: slots[i] = v; break;
                case float v: *(float*)(slots + i) = v; break;
                default: throw new ArgumentException($"kernel {kernel}: argument {i} has unsupported type {args[i]?.GetType().Name}");
            }
            ptrs[i] = slots + i;
        }
        CuDriver.Check(CuDriver.cuLaunchKernel(Function(kernel), shape.GridX, shape.GridY, shape.GridZ, shape.Block, 1, 1, shape.SharedBytes, Stream, ptrs, null),
            $"cuLaunchKernel({kernel})");
    }

    public void Synchronize() => CuDriver.Check(CuDriver.cuStreamSynchronize(Stream), nameof(CuDriver.cuStreamSynchronize));

    public void Dispose()
    {
        MakeCurrent();
        CuBlas.cublasDestroy_v2(Blas);
        foreach (var m in _modules) CuDriver.cuModuleUnload(m);
        CuDriver.cuStreamDestroy_v2(Stream);
        CuDriver.cuDevicePrimaryCtxRelease_v2(Device);
    }
}
