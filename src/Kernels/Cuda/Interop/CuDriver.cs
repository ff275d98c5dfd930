using System.Runtime.InteropServices;
using System.Text;

namespace Loom.Kernels.Cuda.Interop;

/// <summary>A failed CUDA driver call: names the call and its CUresult.</summary>
public sealed class CudaException(string call, int result, string? detail = null)
    : Exception($"{call} failed: {CuDriver.ResultName(result)} ({result}){(detail is { Length: > 0 } ? ": " + detail : "")}")
{
    public string Call { get; } = call;
    public int Result { get; } = result;
}

/// <summary>
/// The CUDA Driver API calls Loom uses, over libcuda.so.1 (ManagedCuda is not served here, and a
/// thin layer is all the engine needs). `_v2` entry points where the driver has them. Every call
/// goes through <see cref="Check"/>, so a failure names the call and the CUresult.
/// </summary>
public static unsafe class CuDriver
{
    private const string Lib = NativeLibraries.Cuda;

    [DllImport(Lib)] public static extern int cuInit(uint flags);
    [DllImport(Lib)] public static extern int cuDriverGetVersion(out int version);
    [DllImport(Lib)] public static extern int cuDeviceGetCount(out int count);
    [DllImport(Lib)] public static extern int cuDeviceGet(out int device, int ordinal);
    [DllImport(Lib)] public static extern int cuDeviceGetName(byte* name, int length, int device);
    [DllImport(Lib)] public static extern int cuDeviceGetAttribute(out int value, int attribute, int device);
    [DllImport(Lib)] public static extern int cuDeviceTotalMem_v2(out nuint bytes, int device);
    [DllImport(Lib)] public static extern int cuDevicePrimaryCtxRetain(out nint context, int device);
    [DllImport(Lib)] public static extern int cuDevicePrimaryCtxRelease_v2(int device);
    [DllImport(Lib)] public static extern int cuCtxSetCurrent(nint context);
    [DllImport(Lib)] public static extern int cuCtxSynchronize();
    [DllImport(Lib)] public static extern int cuMemAlloc_v2(out nint pointer, nuint bytes);
    [DllImport(Lib)] public static extern int cuMemFree_v2(nint pointer);
    [DllImport(Lib)] public static extern int cuMemAllocHost_v2(out void* pointer, nuint bytes);
    [DllImport(Lib)] public static extern int cuMemFreeHost(void* pointer);
    [DllImport(Lib)] public static extern int cuMemGetInfo_v2(out nuint free, out nuint total);
    [DllImport(Lib)] public static extern int cuMemsetD8_v2(nint pointer, byte value, nuint count);
    [DllImport(Lib)] public static extern int cuMemcpyHtoD_v2(nint dst, void* src, nuint bytes);
    [DllImport(Lib)] public static extern int cuMemcpyDtoH_v2(void* dst, nint src, nuint bytes);
    [DllImport(Lib)] public static extern int cuMemcpyDtoD_v2(nint dst, nint src, nuint bytes);
    [DllImport(Lib)] public static extern int cuMemcpyHtoDAsync_v2(nint dst, void* src, nuint bytes, nint stream);
    [DllImport(Lib)] public static extern int cuMemcpyDtoHAsync_v2(void* dst, nint src, nuint bytes, nint stream);
    [DllImport(Lib)] public static extern int cuMemcpyDtoDAsync_v2(nint dst, nint src, nuint bytes, nint stream);
    [DllImport(Lib)] public static extern int cuStreamCreate(out nint stream, uint flags);
    [DllImport(Lib)] public static extern int cuStreamSynchronize(nint stream);
    [DllImport(Lib)] public static extern int cuStreamDestroy_v2(nint stream);
    [DllImport(Lib)] public static extern int cuEventCreate(out nint ev, uint flags);
    [DllImport(Lib)] public static extern int cuEventRecord(nint ev, nint stream);
    [DllImport(Lib)] public static extern int cuEventSynchronize(nint ev);
    [DllImport(Lib)] public static extern int cuEventElapsedTime(out float milliseconds, nint start, nint end);
    [DllImport(Lib)] public static extern int cuEventDestroy_v2(nint ev);
    [DllImport(Lib)] public static extern int cuModuleLoadDataEx(out nint module, byte* image, uint numOptions, int* options, void** optionValues);
    [DllImport(Lib)] public static extern int cuModuleUnload(nint module);
    [DllImport(Lib)] public static extern int cuModuleGetFunction(out nint function, nint module, [MarshalAs(UnmanagedType.LPUTF8Str)] string name);
    [DllImport(Lib)] public static extern int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemBytes, nint stream, void** kernelParams, void** extra);

    public const int AttributeComputeCapabilityMajor = 75;
    public const int AttributeComputeCapabilityMinor = 76;
    public const int AttributeMultiprocessorCount = 16;

    private const int JitErrorLogBuffer = 5;
    private const int JitErrorLogBufferSizeBytes = 6;

    public static void Check(int result, string call)
    {
        if (result != 0) throw new CudaException(call, result);
    }

    public static string DeviceName(int device)
    {
        byte* buf = stackalloc byte[256];
        Check(cuDeviceGetName(buf, 256, device), nameof(cuDeviceGetName));
        return Marshal.PtrToStringUTF8((nint)buf) ?? "";
    }

    /// <summary>Loads a PTX module; a JIT failure carries the JIT's own error log.</summary>
    public static nint LoadModule(string ptx)
    {
        var image = Encoding.UTF8.GetBytes(ptx + "\0");
        const int logSize = 16384;
        var log = new byte[logSize];
        fixed (byte* img = image, logp = log)
        {
            int* options = stackalloc int[2] { JitErrorLogBuffer, JitErrorLogBufferSizeBytes };
            void** values = stackalloc void*[2] { logp, (void*)(nint)logSize };
            int r = cuModuleLoadDataEx(out nint module, img, 2, options, values);
            if (r != 0) throw new CudaException(nameof(cuModuleLoadDataEx), r, Encoding.UTF8.GetString(log).TrimEnd('\0').Trim());
            return module;
        }
    }

    /// <summary>The CUresult's enum name (the subset a serving engine meets), or "CUDA_ERROR_<code>".</summary>
    public static string ResultName(int result) => result switch
    {
        0 => "CUDA_SUCCESS",
        1 => "CUDA_ERROR_INVALID_VALUE",
        2 => "CUDA_ERROR_OUT_OF_MEMORY",
        3 => "CUDA_ERROR_NOT_INITIALIZED",
        4 => "CUDA_ERROR_DEINITIALIZED",
        34 => "CUDA_ERROR_STUB_LIBRARY",
        100 => "CUDA_ERROR_NO_DEVICE",
        101 => "CUDA_ERROR_INVALID_DEVICE",
        200 => "CUDA_ERROR_INVALID_IMAGE",
        201 => "CUDA_ERROR_INVALID_CONTEXT",
        209 => "CUDA_ERROR_NO_BINARY_FOR_GPU",
        218 => "CUDA_ERROR_INVALID_PTX",
        222 => "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        400 => "CUDA_ERROR_INVALID_HANDLE",
        500 => "CUDA_ERROR_NOT_FOUND",
        600 => "CUDA_ERROR_NOT_READY",
        700 => "CUDA_ERROR_ILLEGAL_ADDRESS",
        701 => "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        702 => "CUDA_ERROR_LAUNCH_TIMEOUT",
        719 => "CUDA_ERROR_LAUNCH_FAILED",
        803 => "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        804 => "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        999 => "CUDA_ERROR_UNKNOWN",
        _ => $"CUDA_ERROR_{result}",
    };
}
