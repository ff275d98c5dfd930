using System.Runtime.InteropServices;
using Loom.Kernels.Cpu.Quant;

namespace Loom.Kernels.Tests;

/// <summary>Quantized (GGUF) linear layers and embeddings against the scalar dequantize reference, on odd sizes.</summary>
public class QuantTests : IsaTestBase
{
    public static TheoryData<string, int, int, string> Shapes()
    {
        var data = new TheoryData<string, int, int, string>();
        // Fewer rows than ISimd.QuantDecodeMinRows (16, or 256 on x86) take the int8 path, more the
        // decoded-panel path, so 16..100 cover one or the other by ISA and 256+ the decoded path on all.
        // K not a multiple of 64 pads the last chunk.
        foreach (var t in new[] { "Q8_0", "Q4_0", "Q5_0" })
            foreach (var (m, k, n) in new[] { (1, 32, "1"), (1, 96, "33"), (3, 160, "31"), (15, 576, "95"), (16, 96, "33"), (17, 224, "65"), (40, 416, "31"), (261, 96, "33") })
                data.Add(t, m, k, n);
        foreach (var t in new[] { "Q4_K", "Q6_K" })
            foreach (var (m, k, n) in new[] { (1, 256, "1"), (2, 768, "33"), (7, 256, "95"), (16, 512, "31"), (29, 256, "65"), (100, 768, "40"), (257, 512, "31") })
                data.Add(t, m, k, n);
        // Q4_K_M fuses Q4_K q/k with a Q6_K v (and gate/up with Q6_K down elsewhere).
        foreach (var m in new[] { 1, 5, 16, 33, 256 }) data.Add("Q4_K,Q4_K,Q6_K", m, 512, "32,17,9");
        foreach (var m in new[] { 1, 20, 300 }) data.Add("Q4_0,Q8_0", m, 96, "31,33");
        // llama.cpp's Q4_K_M on rows that are not whole 256-blocks: Q5_0 q/k with a Q8_0 v.
        foreach (var m in new[] { 1, 17, 260 }) data.Add("Q5_0,Q5_0,Q8_0", m, 160, "33,9,17");
        // Segments whose activations round differently (Q8_0 blocks, then Q8_K super-blocks, then back) in one fused weight.
        foreach (var m in new[] { 1, 3, 20, 270 }) data.Add("Q8_0,Q4_K,Q4_0", m, 256, "17,32,33");
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(Shapes))]
    public void QuantLinearMatchesDequantizedReference(string types, int m, int k, string rows)
    {
        using var backend = Backend(2);
        var t = types.Split(',').Select(Enum.Parse<DType>).ToArray();
        var r = rows.Split(',').Select(int.Parse).ToArray();
        if (r.Length == 1 && t.Length == 1) QuantCases.Linear(backend, t, m, k, r, withBias: m % 2 == 1);
        else QuantCases.Linear(backend, t, m, k, r, withBias: true);
    }

    [SkippableTheory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    [InlineData(DType.Q5_0)]
    [InlineData(DType.Q4_K)]
    [InlineData(DType.Q6_K)]
    public void QuantEmbeddingGathersDecodedRows(DType type)
    {
        using var backend = Backend(1);
        QuantCases.Embedding(backend, type);
    }

    /// <summary>
    /// The panels hold about what the file does, since decode reads every byte each token: Q8_0 and
    /// Q4_0 exactly (fp16 scale per 32), Q4_K a byte sc and m per 32 and float d, dmin per 256 (file:
    /// 6-bit sc, m and fp16 d, dmin), Q6_K 6-bit codes, a byte sc per 16 and a float d per 256 (file: fp16 d).
    /// Q5_0 is the exception: widened to Q8_0's int8 codes it takes Q8_0's 1.0625 (file: 0.6875).
    /// </summary>
    [SkippableTheory]
    [InlineData(DType.Q8_0, 1.0625)]
    [InlineData(DType.Q4_0, 0.5625)]
    [InlineData(DType.Q5_0, 1.0625)]
    [InlineData(DType.Q4_K, 0.59375)]
    [InlineData(DType.Q6_K, 0.828125)]
    public unsafe void QuantPanelsTakeAboutWhatTheFileTakes(DType type, double bytesPerWeight)
    {
        using var backend = Backend(1);
        const int n = 64, k = 512;
        long rowBytes = type.ByteCount(k);
        var mem = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * n), 64);
        try
        {
            var values = TestData.Random(n * k, 5, 0.5f);
            for (int r = 0; r < n; r++)
                GgmlQuantizer.QuantizeRow(type, values.AsSpan(r * k, k)).CopyTo(new Span<byte>(mem + r * rowBytes, (int)rowBytes));
            using var lw = backend.PrepareLinear([new WeightView((nint)mem, type, [n, k], "w")]);
            Assert.Equal(bytesPerWeight, (double)lw.ByteLength / (n * k));
            double bound = type == DType.Q5_0 ? 1.0625 / 0.6875 : 1.06;
            Assert.True(lw.ByteLength <= rowBytes * n * bound, $"{type}: {lw.ByteLength} bytes in memory against {rowBytes * n} in the file");
        }
        finally
        {
            NativeMemory.AlignedFree(mem);
        }
    }

    /// <summary>
    /// Q8_0's and Q4_0's scales stay fp16 in memory and are widened per panel with integer ops (no
    /// vcvtph2ps in .NET 10): every finite half, subnormals, negative d (Q4_0) and the zero of padded
    /// rows included, must come out as the exact float.
    /// </summary>
    [SkippableFact]
    public unsafe void QuantHalfScalesWidenExactly()
    {
        using var backend = Backend(1);
        var widen = Widener(Isa ?? backend.Isa);
        ushort* h = stackalloc ushort[32];
        float* f = stackalloc float[32];
        for (int b = 0; b < 0x10000; b += 32)
        {
            for (int r = 0; r < 32; r++) h[r] = (ushort)(b + r);
            widen(h, f);
            for (int r = 0; r < 32; r++)
            {
                var half = BitConverter.UInt16BitsToHalf(h[r]);
                if (Half.IsFinite(half)) Assert.Equal(BitConverter.SingleToInt32Bits((float)half), BitConverter.SingleToInt32Bits(f[r]));
            }
        }
    }

    private static unsafe delegate*<ushort*, float*, void> Widener(Loom.Kernels.Cpu.Isa.CpuIsa isa) => isa switch
    {
        Loom.Kernels.Cpu.Isa.CpuIsa.Avx512 => &Loom.Kernels.Cpu.Isa.Avx512Simd.WidenHalfScales,
        Loom.Kernels.Cpu.Isa.CpuIsa.Avx2 => &Loom.Kernels.Cpu.Isa.Avx2Simd.WidenHalfScales,
        Loom.Kernels.Cpu.Isa.CpuIsa.Neon => &Loom.Kernels.Cpu.Isa.NeonSimd.WidenHalfScales,
        Loom.Kernels.Cpu.Isa.CpuIsa.Portable => &Loom.Kernels.Cpu.Isa.PortableSimd.WidenHalfScales,
        _ => &Loom.Kernels.Cpu.Isa.ScalarSimd.WidenHalfScales,
    };

    [Fact]
    public unsafe void QuantBlocksRoundTripWithinHalfAStep()
    {
        var x = TestData.Random(512, 9);
        foreach (var type in new[] { DType.Q8_0, DType.Q4_0, DType.Q5_0, DType.Q4_K, DType.Q6_K })
        {
            var q = GgmlQuantizer.QuantizeRow(type, x);
            Assert.Equal(type.ByteCount(512), q.Length);
            var y = new float[512];
            fixed (byte* p = q)
            fixed (float* d = y) GgmlBlocks.DequantizeRow(type, p, d, 512);
            // Coarse: every type keeps each value within its block's step size of the original.
            double step = type switch { DType.Q8_0 => 1.0 / 127, DType.Q6_K => 1.0 / 31, DType.Q5_0 => 1.0 / 15, _ => 1.0 / 7 };
            for (int i = 0; i < 512; i++) Assert.True(Math.Abs(x[i] - y[i]) <= step + 1e-3, $"{type} [{i}]: {x[i]} vs {y[i]}");
        }
    }

    [Fact]
    public void QuantPartsOfMixedPlainAndQuantizedTypesAreRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => QuantLinearWeight.Pack([
            new WeightView(64, DType.Q8_0, [1, 32], "a"), new WeightView(64, DType.F16, [1, 32], "b")]));
        Assert.Contains("'b'", ex.Message);
    }
}
