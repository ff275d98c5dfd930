namespace Loom.Kernels;

/// <summary>Shape of the paged KV pool: every block holds <c>BlockSize</c> tokens of every layer.</summary>
public sealed record KvCacheSpec(int NumLayers, int NumBlocks, int BlockSize, int NumKvHeads, int HeadDim, DType DType)
{
    /// <summary>K and V bytes of one block across all layers.</summary>
    public long BytesPerBlock => 2L * NumLayers * BlockSize * NumKvHeads * HeadDim * DType.Size();
}

/// <summary>
/// The paged K/V pool of one worker. A slot is <c>block * BlockSize + offset</c>. The element
/// layout inside a layer is backend-defined (the CPU uses [block][kvHead][offset][headDim] so a
/// head's block is contiguous for attention).
/// </summary>
public abstract class KvCache : IDisposable
{
    protected KvCache(KvCacheSpec spec) => Spec = spec;

    public KvCacheSpec Spec { get; }

    public abstract void Dispose();
}
