namespace Loom.Kernels.Cpu;

/// <summary>
/// The paged K/V pool in host memory: per layer one K and one V buffer of
/// [block][kvHead] tiles, so one head's block is contiguous for attention. Inside a tile V is
/// [offsetInBlock][headDim] and K is transposed, [headDim][offsetInBlock]: attention then loads
/// 16 keys of one dimension with one vector load and computes 16 scores without horizontal sums.
/// F32, or BF16 to halve the memory (attention widens it).
/// </summary>
public sealed unsafe class CpuKvCache : KvCache
{
    private readonly nint[] _k;
    private readonly nint[] _v;

    public CpuKvCache(KvCacheSpec spec)
        : base(spec)
    {
        if (spec.DType is not (DType.F32 or DType.BF16))
            throw new NotSupportedException($"the CPU KV cache stores F32 or BF16, not {spec.DType}");
        if (spec.NumLayers <= 0 || spec.NumBlocks <= 0 || spec.BlockSize <= 0 || spec.NumKvHeads <= 0 || spec.HeadDim <= 0)
            throw new ArgumentException($"invalid KV cache spec {spec}");
        LayerElements = (long)spec.NumBlocks * spec.NumKvHeads * spec.BlockSize * spec.HeadDim;
        _k = new nint[spec.NumLayers];
        _v = new nint[spec.NumLayers];
        try
        {
            for (int l = 0; l < spec.NumLayers; l++)
            {
                _k[l] = (nint)NativeBuffer.Alloc(LayerElements * spec.DType.Size());
                _v[l] = (nint)NativeBuffer.Alloc(LayerElements * spec.DType.Size());
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Elements in one layer's K (or V) buffer.</summary>
    public long LayerElements { get; }

    /// <summary>Start of one layer's K buffer (elements of <see cref="KvCacheSpec.DType"/>).</summary>
    public byte* K(int layer) => (byte*)Check(_k, layer);

    /// <summary>Start of one layer's V buffer (elements of <see cref="KvCacheSpec.DType"/>).</summary>
    public byte* V(int layer) => (byte*)Check(_v, layer);

    /// <summary>Element offset of V (block, kvHead, offset, 0) inside a layer buffer; K's tile starts at (block, kvHead, 0).</summary>
    public long Offset(int block, int kvHead, int offset) =>
        (((long)block * Spec.NumKvHeads + kvHead) * Spec.BlockSize + offset) * Spec.HeadDim;

    private nint Check(nint[] buffers, int layer)
    {
        if ((uint)layer >= (uint)buffers.Length) throw new ArgumentOutOfRangeException(nameof(layer), $"layer {layer} of {buffers.Length}");
        var p = buffers[layer];
        return p != 0 ? p : throw new ObjectDisposedException(nameof(CpuKvCache));
    }

    public override void Dispose()
    {
        for (int l = 0; l < _k.Length; l++)
        {
            NativeBuffer.Release((void*)_k[l]);
            NativeBuffer.Release((void*)_v[l]);
            _k[l] = 0;
            _v[l] = 0;
        }
    }
}
