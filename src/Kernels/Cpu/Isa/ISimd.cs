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

    /// <summary>
    /// Quantized GEMMs with fewer rows than this take the int8 dot products; from it, 32-row panels
    /// decoded to fp32 and the fp32 micro-kernels. Where int8 dot products are cheap (vpmaddubsw,
    /// AVX-VNNI) they win up to a few hundred rows; the Vector128 and scalar ones lose from 16.
    /// </summary>
    static abstract int QuantDecodeMinRows { get; }

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
    /// acc[r] = Σ_g ws[32g + r]·xs[g]·Σ_{k in group g} w(r, k)·x[k] for the 32 rows of one I8 weight
    /// panel (<see cref="Quant.QuantSegment"/>: per 4 k, 128 bytes, row r's 4 signed codes at byte 4r),
    /// <paramref name="groups"/> groups of <paramref name="group"/> (16 or 32) k. Each group's products
    /// are summed exactly in int32 lanes, one lane a row (vpmaddubsw+vpmaddwd with w's sign moved onto
    /// x, AVX-VNNI, sdot, or widening multiplies), so no horizontal sums; x must lie in [-127, 127].
    /// </summary>
    static abstract void DotI8Panel(sbyte* w, sbyte* x, int groups, int group, float* ws, float* xs, float* acc);

    /// <summary>
    /// The same for a Q4_0 U4 panel (per 8 k, 128 bytes: byte j of row r holds code k+j in its low
    /// nibble and k+4+j in its high nibble, codes 0..15 for value/d + 8), groups of 32 k: the +8
    /// comes off each group's int32 sum as 8·qsum[g] (the activation codes' sum), before any float.
    /// </summary>
    static abstract void DotU4Panel(byte* w, sbyte* x, int groups, float* ws, float* xs, int* qsum, float* acc);

    /// <summary>
    /// acc[r] = Σ_b xd[8b]·(d[32b+r]·Σ_{g in b} sc[32g+r]·dot_g(r) − dmin[32b+r]·Σ_{g in b} m[32g+r]·qsum[g])
    /// for the 32 rows of a Q4_K U4 panel over <paramref name="supers"/> 256-blocks of 8 groups: the
    /// sub-scales sc and mins m (0..63) are applied to exact integer group sums the way ggml's vec_dot
    /// does it, and floats are touched once per block and row. xd is the activation scale per group
    /// (Q8_K's d, the same for a block's 8 groups), qsum the activation codes' sum per group.
    /// </summary>
    static abstract void DotQ4KPanel(byte* w, sbyte* x, int supers, sbyte* sc, sbyte* m, float* d, float* dmin, float* xd, int* qsum, float* acc);

    /// <summary>
    /// acc[r] = Σ_b xd[16b]·d[32b+r]·Σ_{g in b} sc[32g+r]·(dot_g(r) − 32·qsum[g]) for the 32 rows of a
    /// Q6_K U6 panel (<see cref="Quant.QuantSegment"/>: codes 0..63, groups of 16 k, 16 groups a
    /// 256-block): the signed byte sub-scales multiply exact integer group sums, as in ggml's vec_dot,
    /// and floats are touched once per block and row.
    /// </summary>
    static abstract void DotQ6KPanel(byte* w, sbyte* x, int supers, sbyte* sc, float* d, float* xd, int* qsum, float* acc);

    /// <summary>One I8 panel step (128 bytes: 32 rows × 4 k) widened to fp32 [4 k][32 rows], row r times s[r].</summary>
    static abstract void DecodeI8Step(sbyte* q, float* s, float* dst);

    /// <summary>One U4 panel step (128 bytes: 32 rows × 8 k) widened to fp32 [8 k][32 rows]: s[r]·code − m[r].</summary>
    static abstract void DecodeU4Step(byte* q, float* s, float* m, float* dst);

    /// <summary>
    /// dst[r] = d[r]·sc[r] for the 32 rows of a panel: a K-quant group's byte sub-scales (or mins)
    /// times their 256-block's float d (or dmin), exact in fp32.
    /// </summary>
    static abstract void WidenScales(sbyte* sc, float* d, float* dst);

    /// <summary>dst[r] = the fp16 h[r] as fp32 for the 32 rows of a panel (Q8_0's and Q4_0's d).</summary>
    static abstract void WidenHalfScales(ushort* h, float* dst);
}
