using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>Converts small checkpoint tensors (biases) to floats on the host; the hot paths live in the backends.</summary>
internal static unsafe class HostConvert
{
    public static void ToFloat(WeightView w, Span<float> dst)
    {
        int n = (int)w.ElementCount;
        if (dst.Length < n) throw new ArgumentException("destination too small", nameof(dst));
        switch (w.DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>((void*)w.Data, n).CopyTo(dst);
                break;
            case DType.F16:
                var h = new ReadOnlySpan<Half>((void*)w.Data, n);
                for (int i = 0; i < n; i++) dst[i] = (float)h[i];
                break;
            case DType.BF16:
                var b = new ReadOnlySpan<ushort>((void*)w.Data, n);
                for (int i = 0; i < n; i++) dst[i] = BitConverter.Int32BitsToSingle(b[i] << 16);
                break;
            default:
                throw new ModelLoadException($"tensor '{w.Name}': dtype {w.DType} cannot be used as a float weight");
        }
    }
}
