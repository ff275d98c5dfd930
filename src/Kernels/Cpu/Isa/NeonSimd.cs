using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// ARM64 Advanced SIMD: 4 lanes and 32 q registers, so the GEMM keeps AVX-512's 12-row block.
/// bf16 widens with one zip against zero (each value lands in the high half of a 32-bit lane);
/// reductions use the across-vector instructions.
/// .NET exposes no prefetch instruction on ARM64: the hardware prefetcher has to do.
/// </summary>
internal unsafe partial struct NeonSimd : ISimd<Vector128<float>>
{
    public static int Lanes => 4;

    public static int MaxRows => 12;

    /// <summary>sdot should move this up as AVX-VNNI does; unmeasured on ARM64 hardware, so the decoded path keeps its old threshold.</summary>
    public static int QuantDecodeMinRows => 16;

    public static Vector128<float> Zero => Vector128<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Splat(float x) => Vector128.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(float* p) => AdvSimd.LoadVector128(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> v, float* p) => AdvSimd.Store(p, v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => AdvSimd.Add(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => AdvSimd.Subtract(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => AdvSimd.Multiply(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Div(Vector128<float> a, Vector128<float> b) => AdvSimd.Arm64.Divide(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => AdvSimd.FusedMultiplyAdd(c, a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => AdvSimd.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> v) => AdvSimd.Arm64.AddPairwiseScalar(AdvSimd.Arm64.AddPairwise(v, v).GetLower()).ToScalar();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector128<float> v) => AdvSimd.Arm64.MaxAcross(v).ToScalar();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x) => VectorMath.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadBf16Pair(byte* p, out Vector128<float> lo, out Vector128<float> hi)
    {
        var v = AdvSimd.LoadVector128((uint*)p);
        lo = AdvSimd.ShiftLeftLogical(v, 16).AsSingle();
        hi = AdvSimd.And(v, Vector128.Create(0xFFFF0000u)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadBf16(ushort* p) =>
        AdvSimd.Arm64.ZipLow(Vector128<ushort>.Zero, AdvSimd.LoadVector64(p).ToVector128Unsafe()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreBf16(Vector128<float> v, ushort* p)
    {
        var u = v.AsUInt32();
        var r = AdvSimd.Add(AdvSimd.Add(u, Vector128.Create(0x7FFFu)), AdvSimd.And(AdvSimd.ShiftRightLogical(u, 16), Vector128<uint>.One));
        AdvSimd.Store(p, AdvSimd.ShiftRightLogicalNarrowingLower(r, 16));
    }

    public static void Prefetch(void* p)
    {
    }

    public static int Transpose12(float* src, int k, float* dst) => 0;
}
