using System.Runtime.InteropServices;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Quant;

namespace Loom.Kernels.Tests;

/// <summary>
/// Quantized linear parity cases, shared by the xunit suites (once per ISA) and tests/CpuCheck:
/// weights are quantized to ggml blocks, and the backend's result is checked against a double
/// precision product with the weights as llama.cpp's scalar dequantize decodes them.
/// </summary>
internal static unsafe class QuantCases
{
    /// <summary>
    /// y = x·Wᵀ (+ b) for W stacked from parts of the given types (Q4_K_M fuses Q4_K and Q6_K).
    /// Both paths round x to int8 as ggml does (Q8_0 blocks of 32, Q8_K super-blocks of 256); that is
    /// their only error beyond float summation, so the check is the bound
    /// Σ_blocks max|x_b|·(1/127 + 1/1024)·Σ|w_b| (a step, plus fp16 rounding of Q8_0's scale) + 1e-5 of Σ|w·x|.
    /// </summary>
    public static void Linear(CpuBackend backend, DType[] types, int m, int k, int[] rows, bool withBias)
    {
        int n = rows.Sum();
        var parts = new WeightView[types.Length];
        var w = new float[(long)n * k];
        var blocks = new List<nint>();
        try
        {
            int row0 = 0;
            for (int p = 0; p < types.Length; p++)
            {
                var values = TestData.Random(rows[p] * k, 11 + p + k + rows[p], 0.5f);
                // Magnitudes that differ by row and by 256-block, so every row and block has a scale of
                // its own: a kernel that used another row's or block's scale would be off by a factor.
                for (int r = 0; r < rows[p]; r++)
                    for (int e = 0; e < k; e++) values[r * k + e] *= (1 + r % 5) * (1 + e / 256 % 3) / 4f;
                long rowBytes = types[p].ByteCount(k);
                var mem = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, rowBytes * rows[p]), 64);
                blocks.Add((nint)mem);
                for (int r = 0; r < rows[p]; r++)
                {
                    var q = GgmlQuantizer.QuantizeRow(types[p], values.AsSpan(r * k, k));
                    q.CopyTo(new Span<byte>(mem + r * rowBytes, q.Length));
                    fixed (float* dst = &w[(long)(row0 + r) * k]) GgmlBlocks.DequantizeRow(types[p], mem + r * rowBytes, dst, k);
                }

                parts[p] = new WeightView((nint)mem, types[p], [rows[p], k], $"w{p}");
                row0 += rows[p];
            }

            var x = TestData.Random(m * k, 7 + m + k);
            var b = withBias ? TestData.Random(n, 3) : null;
            using var lw = backend.PrepareLinear(parts);
            Assert.True(lw is QuantLinearWeight, $"PrepareLinear gave {lw.GetType().Name}, not a QuantLinearWeight");
            Assert.Equal(n, lw.OutFeatures);
            Assert.Equal(k, lw.InFeatures);
            using var xt = TestData.Upload(backend, x, m, k);
            using var bt = b is null ? null : TestData.Upload(backend, b, n);
            using var yt = backend.Allocate(DType.F32, m, n);
            backend.Linear(xt, lw, bt, yt);
            var y = TestData.Download(backend, yt);

            bool int8 = m < 16;
            string what = $"{string.Join("+", types)} M={m} K={k} N={n} ({(int8 ? "int8" : "decoded")})";
            int row = 0;
            for (int p = 0; p < types.Length; p++)
            {
                // ggml rounds activations per Q8_0 block (32) or Q8_K super-block (256).
                int block = types[p] is DType.Q4_K or DType.Q6_K ? 256 : 32;
                for (int r = 0; r < rows[p]; r++, row++)
                {
                    for (int i = 0; i < m; i++)
                    {
                        double exact = b?[row] ?? 0, mag = 0, bound = 0;
                        for (int g0 = 0; g0 < k; g0 += block)
                        {
                            double amax = 0, wsum = 0;
                            for (int e = g0; e < Math.Min(k, g0 + block); e++)
                            {
                                double wv = w[(long)row * k + e], xv = x[i * k + e];
                                exact += wv * xv;
                                mag += Math.Abs(wv * xv);
                                amax = Math.Max(amax, Math.Abs(xv));
                                wsum += Math.Abs(wv);
                            }

                            bound += amax * (1.0 / 127 + 1.0 / 1024) * wsum;
                        }

                        double tol = bound + 1e-5 * mag + 1e-6;
                        double diff = Math.Abs(exact - y[(long)i * n + row]);
                        if (!(diff <= tol)) Assert.Fail($"{what} y[{i},{row}]: expected {exact}, got {y[(long)i * n + row]} (diff {diff:g3} > tol {tol:g3})");
                    }
                }
            }
        }
        finally
        {
            foreach (var p in blocks) NativeMemory.AlignedFree((void*)p);
        }
    }

    /// <summary>A quantized embedding table gathers rows exactly as the scalar dequantize decodes them.</summary>
    public static void Embedding(CpuBackend backend, DType type)
    {
        int vocab = 7, h = 256;
        var values = TestData.Random(vocab * h, 5);
        var bytes = new byte[type.ByteCount((long)vocab * h)];
        for (int r = 0; r < vocab; r++)
            GgmlQuantizer.QuantizeRow(type, values.AsSpan(r * h, h)).CopyTo(bytes.AsSpan((int)(r * type.ByteCount(h))));
        fixed (byte* p = bytes)
        {
            using var table = backend.Upload(new WeightView((nint)p, type, [vocab, h], "embed"), type);
            using var output = backend.Allocate(DType.F32, 3, h);
            int[] ids = [6, 0, 3];
            backend.Embedding(table, ids, output);
            var got = TestData.Download(backend, output);
            var expected = new float[3 * h];
            fixed (float* e = expected)
                for (int i = 0; i < 3; i++) GgmlBlocks.DequantizeRow(type, p + ids[i] * type.ByteCount(h), e + i * h, h);
            Assert.Equal(expected, got);
        }
    }
}
