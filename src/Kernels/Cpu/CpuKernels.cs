using System.Runtime.Intrinsics;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu;

/// <summary>
/// The CPU backend's one instruction-set seam: every kernel whose body depends on the vector ISA
/// (GEMM micro-kernels and weight panels, the attention tile, row ops, dtype widening) is reached
/// through here. <see cref="CpuBackend"/> picks an instance once; nothing above it names an intrinsic.
/// </summary>
public abstract unsafe class CpuKernels
{
    public abstract CpuIsa Isa { get; }

    /// <summary>Bits per vector register the kernels use (32 for the scalar path).</summary>
    public abstract int VectorBits { get; }

    internal abstract void Linear(CpuThreadPool pool, ScratchBuffer scratch, float* x, int m, PackedLinearWeight w, float* bias, float* y);

    internal abstract void QuantLinear(CpuThreadPool pool, ScratchBuffer scratch, float* x, int m, Quant.QuantLinearWeight w, float* bias, float* y);

    internal abstract void Attention(CpuThreadPool pool, ScratchBuffer scratch, Tensor q, CpuKvCache cache, int layer, AttentionMetadata meta,
        int numHeads, float scale, Tensor output);

    internal abstract void RowOps(CpuThreadPool pool, ref RowOps.Job job);

    internal abstract void Add(float* a, float* b, float* o, long n);

    internal abstract void ToF32(void* src, DType from, float* dst, long n);

    internal abstract void FromF32(float* src, void* dst, DType to, int n);

    /// <summary>The implementation for <paramref name="isa"/>; the caller has checked it is supported.</summary>
    public static CpuKernels For(CpuIsa isa) => isa switch
    {
        CpuIsa.Avx512 => new SimdKernels<Avx512Simd, Vector512<float>>(isa),
        CpuIsa.Avx2 => new SimdKernels<Avx2Simd, Vector256<float>>(isa),
        CpuIsa.Neon => new SimdKernels<NeonSimd, Vector128<float>>(isa),
        CpuIsa.Portable => new SimdKernels<PortableSimd, Vector128<float>>(isa),
        CpuIsa.Scalar => new SimdKernels<ScalarSimd, float>(isa),
        _ => throw new ArgumentOutOfRangeException(nameof(isa)),
    };
}

/// <summary>The generic kernels instantiated for one ISA: the JIT compiles each with its own vector width.</summary>
internal sealed unsafe class SimdKernels<S, V>(CpuIsa isa) : CpuKernels
    where S : struct, ISimd<V>
    where V : unmanaged
{
    public override CpuIsa Isa => isa;

    public override int VectorBits => S.Lanes * 32;

    internal override void Linear(CpuThreadPool pool, ScratchBuffer scratch, float* x, int m, PackedLinearWeight w, float* bias, float* y) =>
        CpuGemm<S, V>.Linear(pool, scratch, x, m, w, bias, y);

    internal override void QuantLinear(CpuThreadPool pool, ScratchBuffer scratch, float* x, int m, Quant.QuantLinearWeight w, float* bias, float* y) =>
        Quant.QuantGemm<S, V>.Linear(pool, scratch, x, m, w, bias, y);

    internal override void Attention(CpuThreadPool pool, ScratchBuffer scratch, Tensor q, CpuKvCache cache, int layer, AttentionMetadata meta,
        int numHeads, float scale, Tensor output) =>
        CpuAttention<S, V>.Run(pool, scratch, q, cache, layer, meta, numHeads, scale, output);

    internal override void RowOps(CpuThreadPool pool, ref RowOps.Job job) => Cpu.RowOps.Run<S, V>(pool, ref job);

    internal override void Add(float* a, float* b, float* o, long n) => ElementwiseKernels<S, V>.Add(a, b, o, n);

    internal override void ToF32(void* src, DType from, float* dst, long n) => ElementwiseKernels<S, V>.ToF32(src, from, dst, n);

    internal override void FromF32(float* src, void* dst, DType to, int n) => ElementwiseKernels<S, V>.FromF32(src, dst, to, n);
}
