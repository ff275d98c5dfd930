using Loom.Kernels.Cpu;

namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// A linear weight kept quantized in memory (GGUF Q8_0, Q4_0, Q4_K, Q6_K), converted exactly at
/// load into 32-row panels the int8 kernels read without per-block decoding (<see cref="QuantSegment"/>:
/// I8 signed bytes for Q8_0, U4 nibbles for Q4_0 and Q4_K, U6 6-bit codes for Q6_K). Scales are
/// stored as the file has them (Q8_0/Q4_0: fp16 d per 32; K-quants: a byte sc/m per group and d/dmin
/// per 256-block). Every value decodes to exactly what llama.cpp's dequantize gives. Rows are padded
/// to whole panels with zero codes and scales. Fused parts (q/k/v, gate/up) that differ in type, as
/// Q4_K_M mixes Q4_K and Q6_K, become consecutive segments.
/// </summary>
public sealed unsafe class QuantLinearWeight : LinearWeight
{
    private readonly QuantSegment[] _segments;

    private QuantLinearWeight(int n, int k, DType dtype, QuantSegment[] segments)
        : base(n, k, dtype) => _segments = segments;

    internal QuantSegment[] Segments => _segments;

    public override long ByteLength => _segments.Sum(s => s.ByteLength);

    /// <summary>The segments' GGUF types in output order (one per run of same-typed parts).</summary>
    public IReadOnlyList<DType> SegmentTypes => _segments.Select(s => s.Source).ToArray();

    /// <summary>Converts <paramref name="parts"/> (each [N_i, K] in one quantized type) and stacks them along N.</summary>
    public static QuantLinearWeight Pack(IReadOnlyList<WeightView> parts, CpuThreadPool? pool = null)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) throw new ArgumentException("PrepareLinear needs at least one weight", nameof(parts));
        int k = parts[0].Shape is { Length: 2 } s0 ? s0[1] : throw new ArgumentException($"weight '{parts[0].Name}' must be 2-D [N, K]");
        foreach (var p in parts) Validate(p, k);
        var segments = new List<QuantSegment>();
        try
        {
            int col = 0;
            for (int i = 0; i < parts.Count;)
            {
                int j = i;
                var type = parts[i].DType;
                while (j < parts.Count && parts[j].DType == type) j++;
                var seg = QuantSegment.Create(parts.Skip(i).Take(j - i).ToArray(), k, col, pool);
                segments.Add(seg);
                col += seg.Rows;
                i = j;
            }

            return new QuantLinearWeight(col, k, parts[0].DType, segments.ToArray());
        }
        catch
        {
            foreach (var s in segments) s.Dispose();
            throw;
        }
    }

    private static void Validate(WeightView p, int k)
    {
        if (p.Shape is null || p.Shape.Length != 2)
            throw new ArgumentException($"weight '{p.Name}' must be 2-D [N, K], got [{string.Join(",", p.Shape ?? [])}]");
        if (!p.DType.IsQuantized())
            throw new ArgumentException($"weight '{p.Name}' is {p.DType}; a quantized linear layer needs every fused part quantized");
        if (p.Shape[1] != k)
            throw new ArgumentException($"weight '{p.Name}' has K={p.Shape[1]} but the first part has K={k}; fused parts must share K");
        if (k % p.DType.BlockElements() != 0)
            throw new ArgumentException($"weight '{p.Name}': K={k} is not a multiple of the {p.DType} block of {p.DType.BlockElements()}");
        if (p.Data == 0 && p.ElementCount > 0) throw new ArgumentException($"weight '{p.Name}' has no data");
    }

    public override void Dispose()
    {
        foreach (var s in _segments) s.Dispose();
    }
}
