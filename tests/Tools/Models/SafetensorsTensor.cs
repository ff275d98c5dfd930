using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>
/// A tensor to write: its header facts up front, its bytes later through <see cref="WriteData"/>,
/// so a writer can stream multi-GB models without holding them in memory.
/// <see cref="WriteData"/> must write exactly <see cref="ByteLength"/> bytes, little-endian.
/// </summary>
public sealed record SafetensorsTensor(string Name, DType DType, int[] Shape, Action<Stream> WriteData)
{
    public long ByteLength
    {
        get
        {
            long n = DType.Size();
            foreach (var d in Shape) n = checked(n * d);
            return n;
        }
    }

    /// <summary>A tensor whose bytes are already in memory (tests, small tensors).</summary>
    public static SafetensorsTensor FromBytes(string name, DType dtype, int[] shape, ReadOnlyMemory<byte> data) =>
        new(name, dtype, shape, s => s.Write(data.Span));
}
