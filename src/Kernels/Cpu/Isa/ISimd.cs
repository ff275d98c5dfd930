namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// The instruction-set seam: every vector operation the CPU kernels use, for one vector type
/// <typeparamref name="V"/> of <see cref="Lanes"/> floats. The kernels are written once, generic over
/// an implementing struct, and the JIT specialises and inlines each instantiation, so an AVX-512,
/// AVX2, NEON, Vector128 and scalar build of every kernel exists without five copies of it.
/// Only the structs in this folder name intrinsics.
/// </summary>
internal unsafe interface ISimd<V>
    where V : unmanaged
{
    /// <summary>Floats per vector: 16, 8, 4 or 1. Divides 16 (attention tiles and GEMM panel halves are 16 wide).</summary>
    static abstract int Lanes { get; }

    /// <summary>Rows of the GEMM register block (2 accumulators a row): what the register file holds without spills.</summary>
    static abstract int MaxRows { get; }

    static abstract V Zero { get; }

    static abstract V Splat(float x);

    static abstract V Load(float* p);

    static abstract void Store(V v, float* p);

    static abstract V Add(V a, V b);

    static abstract V Sub(V a, V b);

    static abstract V Mul(V a, V b);

    static abstract V Div(V a, V b);

    /// <summary>a·b + c, fused where the instruction set has an FMA.</summary>
    static abstract V MulAdd(V a, V b, V c);

    static abstract V Max(V a, V b);

    static abstract float Sum(V v);

    static abstract float MaxAcross(V v);

    /// <summary>e^x, relative error below 3e-7 on [-87, 88]; lanes below that range give ~0 (callers mask them).</summary>
    static abstract V Exp(V x);

    /// <summary>
    /// One vector's worth of 32-bit lanes that each hold two bf16 values (see <see cref="Bf16Panel"/>):
    /// the low halves widen to <paramref name="lo"/>, the high halves to <paramref name="hi"/>.
    /// </summary>
    static abstract void LoadBf16Pair(byte* p, out V lo, out V hi);

    /// <summary><see cref="Lanes"/> consecutive bf16 values widened to fp32.</summary>
    static abstract V LoadBf16(ushort* p);

    /// <summary><see cref="Lanes"/> floats rounded to bf16 (nearest-even) and stored.</summary>
    static abstract void StoreBf16(V v, ushort* p);

    /// <summary>A hint to bring a cache line in; a no-op where the instruction set has none exposed.</summary>
    static abstract void Prefetch(void* p);

    /// <summary>
    /// Optional fast path for GEMM activation packing: transposes rows [12][k] into [k][12] for a
    /// prefix of k and returns how many k it did (0 = none; the caller finishes the rest).
    /// </summary>
    static abstract int Transpose12(float* src, int k, float* dst);

    /// <summary>
    /// acc + Σ_{i&lt;64} w[i]·x[i]·c[i / G], G = 16 when <paramref name="g16"/> else 32 (c holds 4 or 2
    /// combined scales; up to 4 floats are read), spread over the lanes. The int8 products are summed
    /// exactly in 32-bit lanes first (int8 dot products: vpmaddubsw+vpmaddwd, sdot, or widening
    /// multiplies); x must lie in [-127, 127].
    /// </summary>
    static abstract V DotI8x64(sbyte* w, sbyte* x, float* c, bool g16, V acc);

    /// <summary>
    /// The same over 64 unsigned 4-bit codes in 32 bytes (byte i holds element i in its low nibble and
    /// element 32+i in its high nibble), in two groups of 32 scaled by c[0] and c[1].
    /// </summary>
    static abstract V DotU4x64(byte* w, sbyte* x, float* c, V acc);

    /// <summary><see cref="Lanes"/> signed bytes widened to fp32.</summary>
    static abstract V LoadI8(sbyte* p);
}
