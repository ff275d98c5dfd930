using System.Runtime.InteropServices;

namespace Loom.Kernels.Cuda.Interop;

/// <summary>A failed cuBLAS call, named with its cublasStatus_t.</summary>
public sealed class CublasException(string call, int status) : Exception($"{call} failed: {CuBlas.StatusName(status)} ({status})");

/// <summary>
/// cuBLAS GEMMs for the linear layers: bf16 weights and activations in, fp32 accumulation
/// (CUBLAS_COMPUTE_32F, tensor-core algorithms). Row-major y[M,N] = x[M,K]·W[N,K]ᵀ is, in cuBLAS's
/// column-major terms, yᵀ[N,M] = W[N,K] (read as column-major [K,N], so op T) · xᵀ (column-major
/// [K,M], op N): cublasGemmEx(T, N, m=N, n=M, k=K, A=W lda=K, B=x ldb=K, C=y ldc=N).
/// </summary>
public static unsafe class CuBlas
{
    private const string Lib = NativeLibraries.Cublas;

    public const int OpN = 0, OpT = 1;
    public const int R32F = 0, R16BF = 14;           // cudaDataType_t
    public const int Compute32F = 68;                 // CUBLAS_COMPUTE_32F
    public const int GemmDefaultTensorOp = 99;        // CUBLAS_GEMM_DEFAULT_TENSOR_OP

    [DllImport(Lib)] public static extern int cublasCreate_v2(out nint handle);
    [DllImport(Lib)] public static extern int cublasDestroy_v2(nint handle);
    [DllImport(Lib)] public static extern int cublasSetStream_v2(nint handle, nint stream);
    [DllImport(Lib)] public static extern int cublasGemmEx(nint handle, int transa, int transb, int m, int n, int k,
        float* alpha, nint a, int aType, int lda, nint b, int bType, int ldb, float* beta, nint c, int cType, int ldc, int computeType, int algo);

    public static void Check(int status, string call)
    {
        if (status != 0) throw new CublasException(call, status);
    }

    /// <summary>Row-major y[M,N] = x[M,K]·W[N,K]ᵀ; <paramref name="xType"/>/<paramref name="wType"/>/<paramref name="yType"/> are cudaDataType_t values.</summary>
    public static void LinearRowMajor(nint handle, int m, int n, int k, nint x, int xType, nint w, int wType, nint y, int yType)
    {
        float alpha = 1f, beta = 0f;
        Check(cublasGemmEx(handle, OpT, OpN, n, m, k, &alpha, w, wType, k, x, xType, k, &beta, y, yType, n, Compute32F, GemmDefaultTensorOp),
            nameof(cublasGemmEx));
    }

    public static string StatusName(int status) => status switch
    {
        0 => "CUBLAS_STATUS_SUCCESS",
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => $"CUBLAS_STATUS_{status}",
    };
}
