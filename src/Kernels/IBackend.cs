namespace Loom.Kernels;

/// <summary>
/// The only surface the model code talks to: the operations a Llama-family forward needs.
/// Activations are F32 tensors of shape [tokens, features]; weights keep their file dtype.
/// Unless stated, an output may not alias an input.
/// </summary>
public interface IBackend : IDisposable
{
    string Name { get; }

    /// <summary>A zero-filled tensor on this backend.</summary>
    Tensor Allocate(DType dtype, params int[] shape);

    /// <summary>Copies a checkpoint tensor onto the backend, converted to <paramref name="dtype"/>.</summary>
    Tensor Upload(WeightView source, DType dtype);

    /// <summary>
    /// Prepares W[N, K] for <see cref="Linear"/>; <paramref name="parts"/> (same K and dtype) are
    /// stacked along N in order, which fuses q/k/v or gate/up into one GEMM.
    /// </summary>
    LinearWeight PrepareLinear(IReadOnlyList<WeightView> parts);

    /// <summary>
    /// Whether <see cref="PrepareLinear"/>, <see cref="Upload"/> and <see cref="Embedding"/> take GGUF
    /// quantized weights as they are (the CPU backend); loaders decode them to bf16 for the others.
    /// </summary>
    bool AcceptsQuantizedWeights => false;

    /// <summary>output[i] = table[ids[i]] as F32. The table may be F32, F16 or BF16.</summary>
    void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor output);

    /// <summary>Row-wise RMSNorm over the last dimension: out = x / rms(x) * weight. Output may alias x.</summary>
    void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output);

    /// <summary>Fused residual add and RMSNorm: residual += x; output = RmsNorm(residual). Output may alias x.</summary>
    void AddRmsNorm(Tensor x, Tensor residual, Tensor weight, float eps, Tensor output);

    /// <summary>output[M, N] = x[M, K] · Wᵀ (+ bias[N]), fp32 accumulation.</summary>
    void Linear(Tensor x, LinearWeight weight, Tensor? bias, Tensor output);

    /// <summary>output[:, j] = source[:, columnOffset + j] for j &lt; output.Cols.</summary>
    void CopyColumns(Tensor source, int columnOffset, Tensor output);

    /// <summary>
    /// In-place rotary embedding, HF rotate_half convention, on x[tokens, heads * headDim].
    /// Rotates the first 2·invFreq.Length dims of each head: angle = positions[t] * invFreq[i];
    /// cos/sin are multiplied by <paramref name="attentionScaling"/> (1 except for YaRN-style scaling).
    /// </summary>
    void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, float attentionScaling);

    /// <summary>output[M, F] = silu(gateUp[:, :F]) * gateUp[:, F:].</summary>
    void SiluAndMul(Tensor gateUp, Tensor output);

    /// <summary>output = a + b (same shape). Output may alias a or b.</summary>
    void Add(Tensor a, Tensor b, Tensor output);

    /// <summary>output[i] = x[rows[i]].</summary>
    void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor output);

    KvCache AllocateKvCache(KvCacheSpec spec);

    /// <summary>Writes k/v[tokens, kvHeads * headDim] of one layer into the paged pool at slotMapping[token]; a negative slot is skipped.</summary>
    void WriteKv(KvCache cache, int layer, Tensor k, Tensor v, ReadOnlySpan<int> slotMapping);

    /// <summary>
    /// Causal grouped-query attention of q[tokens, heads * headDim] against the paged K/V of one
    /// layer (which already holds this step's tokens), described by <paramref name="meta"/>.
    /// </summary>
    void PagedAttention(Tensor q, KvCache cache, int layer, AttentionMetadata meta, int numHeads, float scale, Tensor output);

    /// <summary>Copies a tensor's F32 contents to host memory.</summary>
    void CopyToHost(Tensor source, Span<float> destination);

    /// <summary>Copies host floats into an F32 tensor.</summary>
    void CopyFromHost(ReadOnlySpan<float> source, Tensor destination);

    /// <summary>Waits for queued work (a no-op on synchronous backends).</summary>
    void Synchronize();
}
