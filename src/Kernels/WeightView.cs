namespace Loom.Kernels;

/// <summary>
/// Weight bytes exactly as they sit in the checkpoint (usually a memory-mapped file region).
/// The memory stays valid as long as the owner of the mapping is alive. Backends copy, pack or
/// upload from it; nothing here touches the managed heap.
/// </summary>
public readonly record struct WeightView(nint Data, DType DType, int[] Shape, string Name)
{
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape) n *= d;
            return n;
        }
    }

    public long ByteLength => DType.ByteCount(ElementCount);

    /// <summary>The bytes as a span (tensors under 2 GiB; larger ones are streamed by the backends).</summary>
    public unsafe ReadOnlySpan<byte> Bytes() => new((void*)Data, checked((int)ByteLength));
}
