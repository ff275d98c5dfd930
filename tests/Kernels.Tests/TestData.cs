using System.Runtime.InteropServices;

namespace Loom.Kernels.Tests;

/// <summary>Native copies of host arrays in checkpoint dtypes, standing in for a memory-mapped file.</summary>
internal sealed unsafe class NativeWeights : IDisposable
{
    private readonly List<nint> _blocks = [];

    /// <summary>Stores <paramref name="values"/> as <paramref name="dtype"/>; returns the view and the values as that dtype rounds them.</summary>
    public WeightView Make(string name, DType dtype, int[] shape, float[] values, out float[] rounded)
    {
        rounded = values.Select(v => Round(v, dtype)).ToArray();
        long bytes = values.Length * (long)dtype.Size();
        var p = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(64, bytes), 64);
        _blocks.Add(p);
        for (int i = 0; i < values.Length; i++)
        {
            switch (dtype)
            {
                case DType.F32: ((float*)p)[i] = values[i]; break;
                case DType.F16: ((Half*)p)[i] = (Half)values[i]; break;
                case DType.BF16: ((ushort*)p)[i] = ToBf16(values[i]); break;
                default: throw new NotSupportedException(dtype.ToString());
            }
        }

        return new WeightView(p, dtype, shape, name);
    }

    public static float Round(float v, DType dtype) => dtype switch
    {
        DType.F32 => v,
        DType.F16 => (float)(Half)v,
        DType.BF16 => BitConverter.Int32BitsToSingle(ToBf16(v) << 16),
        _ => throw new NotSupportedException(dtype.ToString()),
    };

    public static ushort ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        u += 0x7FFF + ((u >> 16) & 1);
        return (ushort)(u >> 16);
    }

    public void Dispose()
    {
        foreach (var p in _blocks) NativeMemory.AlignedFree((void*)p);
        _blocks.Clear();
    }
}

internal static class TestData
{
    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static Tensor Upload(IBackend backend, float[] data, params int[] shape)
    {
        var t = backend.Allocate(DType.F32, shape);
        backend.CopyFromHost(data, t);
        return t;
    }

    public static float[] Download(IBackend backend, Tensor t)
    {
        var a = new float[t.ElementCount];
        backend.CopyToHost(t, a);
        return a;
    }

    /// <summary>Asserts |actual - expected| ≤ abs + rel·scale[i] element-wise, naming the first failure.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double abs, double rel, ReadOnlySpan<double> scale = default, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double s = scale.IsEmpty ? Math.Abs(expected[i]) : scale[i];
            double tol = abs + rel * s;
            double diff = Math.Abs((double)expected[i] - actual[i]);
            if (!(diff <= tol))
                Assert.Fail($"{what} element {i}: expected {expected[i]}, got {actual[i]} (diff {diff:g3} > tol {tol:g3})");
        }
    }
}
