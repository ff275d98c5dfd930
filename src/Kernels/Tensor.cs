namespace Loom.Kernels;

/// <summary>
/// A dense row-major tensor owned by one backend. <see cref="Data"/> is host memory for the CPU
/// backend and device memory for CUDA. Views share memory and never free it.
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    private Action<nint>? _free;

    public Tensor(nint data, DType dtype, int[] shape, Action<nint>? free)
    {
        Data = data;
        DType = dtype;
        Shape = shape;
        _free = free;
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", shape)}]");
            n *= d;
        }
        ElementCount = n;
    }

    public nint Data { get; private set; }
    public DType DType { get; }
    public int[] Shape { get; }
    public long ElementCount { get; }
    public long ByteLength => DType.ByteCount(ElementCount);

    /// <summary>Length of the last dimension.</summary>
    public int Cols => Shape.Length == 0 ? 1 : Shape[^1];

    /// <summary>Product of all dimensions but the last.</summary>
    public int Rows => Cols == 0 ? 0 : checked((int)(ElementCount / Cols));

    /// <summary>A reshaped alias of the same memory (element count must match).</summary>
    public Tensor View(params int[] shape)
    {
        var t = new Tensor(Data, DType, shape, null);
        if (t.ElementCount > ElementCount)
            throw new ArgumentException($"view [{string.Join(",", shape)}] is larger than tensor [{string.Join(",", Shape)}]");
        return t;
    }

    /// <summary>An alias of rows [start, start+count) of a 2-D-like tensor.</summary>
    public Tensor SliceRows(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > Rows)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start},{start + count}) of {Rows}");
        return new Tensor(Data + (nint)((long)start * Cols * DType.Size()), DType, [count, Cols], null);
    }

    /// <summary>Host view as floats; valid only for host-resident F32 tensors.</summary>
    public Span<float> AsFloatSpan()
    {
        if (DType != DType.F32) throw new InvalidOperationException($"tensor is {DType}, not F32");
        return new Span<float>((void*)Data, checked((int)ElementCount));
    }

    public void Dispose()
    {
        var free = Interlocked.Exchange(ref _free, null);
        if (free is not null && Data != 0) free(Data);
        Data = 0;
    }

    public override string ToString() => $"Tensor<{DType}>[{string.Join(",", Shape)}]";
}
