using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// The values of a random-weight model, a pure function of (seed, tensor, row): the demo model's
/// <see cref="SeededWeights"/> computes them in memory and the model generator writes the
/// same bytes to safetensors, so both must come from here.
/// </summary>
/// <remarks>
/// Every tensor row draws from its own SplitMix64 stream seeded by (seed, tensor name, row), so
/// output is byte-identical for a seed and independent of fill order. Init keeps activations O(1)
/// through the stack: linear weights uniform with std 1/sqrt(in), embeddings std 1/sqrt(hidden)
/// (tied heads then give logits of std ~1: peaked enough to have distinct argmaxes, not so peaked
/// that one token wins everywhere), norm weights 1 ± ~0.17 and biases std 0.1 so that a loader
/// ignoring them is caught by comparisons.
/// </remarks>
public static class SeededRows
{
    /// <summary>Fills <paramref name="row"/> with the values of row <paramref name="rowIndex"/> of <paramref name="spec"/>, before dtype rounding.</summary>
    public static void FillRow(ulong seed, TensorSpec spec, int rowIndex, Span<float> row)
    {
        var rng = new SplitMix64(SplitMix64.Mix(SplitMix64.Mix(seed ^ SplitMix64.Hash(spec.Name)) + (ulong)rowIndex));
        // Uniform(-a, a) has std a/sqrt(3); uniform needs no transcendental functions, so bytes
        // cannot differ across platforms or runtime versions.
        float std = spec.Init switch
        {
            TensorInit.Linear => 1f / MathF.Sqrt(spec.Shape[^1]),
            TensorInit.Embedding => 1f / MathF.Sqrt(spec.Shape[^1]),
            TensorInit.Norm => 0.1f,
            TensorInit.Bias => 0.1f,
            _ => throw new ArgumentOutOfRangeException(nameof(spec)),
        };
        float a = std * 1.7320508f;
        float center = spec.Init == TensorInit.Norm ? 1f : 0f;
        for (int i = 0; i < row.Length; i++) row[i] = center + (2f * rng.NextFloat() - 1f) * a;
    }

    /// <summary>Rows and row length of a tensor: a 1-D tensor is one row.</summary>
    public static (int Rows, int Cols) RowsOf(TensorSpec spec) =>
        spec.Shape.Length == 1 ? (1, spec.Shape[0]) : (spec.Shape[0], spec.Shape[1]);

    /// <summary>
    /// Encodes rows [<paramref name="firstRow"/>, +<paramref name="rowCount"/>) of <paramref name="spec"/>
    /// as <paramref name="dtype"/> into <paramref name="dst"/> (rowCount × row bytes). Rows are
    /// independent, so they fill in parallel with the same bytes as a row-by-row fill
    /// (llama3-8b is 8e9 values: minutes on one thread).
    /// </summary>
    public static unsafe void EncodeRows(ulong seed, TensorSpec spec, DType dtype, int firstRow, int rowCount, byte* dst)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentException($"seeded weights must be F32, F16 or BF16, not {dtype}", nameof(dtype));
        int cols = RowsOf(spec).Cols;
        int rowBytes = cols * dtype.Size();
        nint at = (nint)dst;
        Parallel.For(0, rowCount, () => new float[cols], (r, _, values) =>
        {
            FillRow(seed, spec, firstRow + r, values);
            WeightConvert.Encode(values, dtype, new Span<byte>((byte*)at + (long)r * rowBytes, rowBytes));
            return values;
        }, _ => { });
    }
}
