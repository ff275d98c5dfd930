using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;
using Xunit.Abstractions;

namespace Loom.Silo.Tests.Oracle;

/// <summary>
/// Loom serving a quantized GGUF file against llama.cpp (LLamaSharp) on the same file, every
/// position of 4 sequences. The bar is llama.cpp's own quantization error: Loom's logits may differ
/// from llama.cpp's quantized run by no more than llama.cpp's F32 run of the same weights differs
/// from it. Greedy argmax must agree on ≥ 99% of positions on one-layer models, where Loom's logits
/// must also equal llama.cpp's to 1e-4 at ≥ 90% of positions, and on ≥ 98% on two-layer models (why
/// below). Loom runs the sequences the way the engine does (a prefill chunk, then one token a step).
/// </summary>
/// <remarks>
/// Loom rounds activations to int8 exactly as ggml does, so its integer dot products are llama.cpp's
/// and only float summation orders (and exp/RoPE implementations) differ, by a few ulps. On one layer
/// that is what the logits show: 90% of positions agree to 2e-6 and 95% or more to 1e-4 (a 2⁻¹¹ slip
/// in the activation scale leaves none within 1e-4), and argmax agrees on 8293-8296 of
/// 8298 positions over 3 seeds × 6 cases on every instruction-set leg (each leg also runs llama.cpp's
/// build for that ISA). From two layers on, a position's few-ulp difference now and then moves one
/// int8 code across a rounding boundary; the one-step change (≈1e-3 of the residual) reaches every
/// later position through the next layer's attention, where it moves more codes, and logits then
/// differ by 1e-2 to 7e-2. Random models put the top-2 logits that close at ~3% of positions, so
/// argmax follows the noise: pooled over the same 18 files, agreement is 99.98% with one layer,
/// 98.9% with two and 98.1% with four. This is not a Loom-specific error: with the attention output
/// projection zeroed (no mixing across positions) two-layer agreement is 100% and logits agree to
/// 2e-6 at 90% of positions; with the MLP zeroed instead it is 99.7%. llama.cpp shows the same growth against itself
/// (its chunked run against its whole-sequence run, which take different kernels for some products):
/// 10% of late positions off by more than 1e-4 at two layers, 28% at four, where it also disagrees on
/// argmax at 0.4% of them. Reaching 99% at depth would take ggml's float order bit for bit; ggml's
/// avx2 and avx512 builds share theirs, its noavx build does not and drifts likewise.
/// Tried at two layers without a change beyond noise: ggml's RoPE angles (θ·scaleⁱ by repeated float
/// products: 2735 → 2740 of 2766 positions over the six files of one seed), the int8 path for prefill too, RMSNorm sums in double, an
/// exact expf in SiLU, and residual branches scaled down (99.5% at a tenth: the model, not the
/// kernels, sets the figure).
/// </remarks>
public sealed class GgufOracleTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-gguf-oracle-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Tiny, but with rows that are whole 256-blocks so Q4_K and Q6_K are really used (64-wide rows would fall back).</summary>
    internal static ModelPreset Wide(string preset) => ModelPresets.Get(preset) with
    {
        Name = preset + "-256", Hidden = 256, HeadDim = ModelPresets.Get(preset).Architecture == ModelArchitecture.Qwen3 ? 128 : 64, Ffn = 512,
    };

    private static readonly (string Preset, string Type)[] Files =
    [
        ("tiny", "q8_0"), ("tiny", "q4_0"), ("tiny", "q5_0"), ("tiny", "q4_k_m"), ("tiny", "q4_k"), ("tiny", "q6_k"),
        ("tiny-qwen2", "q4_k_m"), ("tiny-qwen3", "q8_0"), ("tiny-mistral", "q4_k_m"),
    ];

    public static TheoryData<string, string, int> Cases()
    {
        var d = new TheoryData<string, string, int>();
        foreach (int layers in new[] { 1, 2 })
            foreach (var (preset, type) in Files) d.Add(preset, type, layers);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void GgufQuantizedLogitsMatchLlamaCppWithinItsOwnQuantizationError(string preset, string type, int layers)
    {
        var p = Wide(preset) with { Name = $"{preset}-256-l{layers}", Layers = layers };
        var modelDir = Path.Combine(_dir, p.Name);
        var quant = Path.Combine(_dir, $"{p.Name}-{type}.gguf");
        var f32 = Path.Combine(_dir, $"{p.Name}-f32.gguf");
        var generated = ModelGenerator.Generate(p, modelDir,
            new GenerateOptions { DType = DType.F32, Seed = 99, GgufPath = quant, GgufType = GgufTypes.Parse(type) });
        using (var w = ModelWeights.Open(modelDir)) GgufModelWriter.Write(generated.Config, w, f32, GgufType.F32, p.Name);

        using var backend = new CpuBackend(2);
        using var model = LlamaModel.Load(quant, backend);
        int vocab = model.Config.VocabSize;
        var rng = new Random(7);
        int[][] sequences = [.. new[] { 1, 60, 150, 250 }.Select(n => Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab)).ToArray())];
        var loom = RunChunked(model, sequences);

        using var refQ = new LlamaCppReference(quant);
        using var refF = new LlamaCppReference(f32);
        double loomVsQ = 0, f32VsQ = 0, loomVsF32 = 0;
        int agree = 0, agreeF32 = 0, agreeSelf = 0, agreeChunked = 0, positions = 0, close = 0;
        double selfDiff = 0;
        for (int s = 0; s < sequences.Length; s++)
        {
            var q = refQ.AllLogits(sequences[s]);
            var f = refF.AllLogits(sequences[s]);
            var qc = refQ.AllLogitsChunked(sequences[s], Math.Max(1, sequences[s].Length * 2 / 3));
            for (int pos = 0; pos < sequences[s].Length; pos++, positions++)
            {
                var a = loom[s].AsSpan(pos * vocab, vocab);
                var e = q.AsSpan(pos * vocab, vocab);
                var g = f.AsSpan(pos * vocab, vocab);
                double here = 0;
                for (int i = 0; i < vocab; i++)
                {
                    here = Math.Max(here, Math.Abs(a[i] - e[i]));
                    f32VsQ = Math.Max(f32VsQ, Math.Abs(g[i] - e[i]));
                    loomVsF32 = Math.Max(loomVsF32, Math.Abs(a[i] - g[i]));
                }

                loomVsQ = Math.Max(loomVsQ, here);
                if (here <= 1e-4) close++;

                if (ArgMax(a) == ArgMax(e)) agree++;
                else output.WriteLine($"  seq {s} pos {pos}: argmax loom {ArgMax(a)} (top-2 gap {Gap(a):E2}), llama.cpp {ArgMax(e)} (gap {Gap(e):E2})");
                if (ArgMax(g) == ArgMax(e)) agreeF32++;
                if (ArgMax(qc.AsSpan(pos * vocab, vocab)) == ArgMax(e)) agreeSelf++;
                if (ArgMax(qc.AsSpan(pos * vocab, vocab)) == ArgMax(a)) agreeChunked++;
                for (int i = 0; i < vocab; i++) selfDiff = Math.Max(selfDiff, Math.Abs(qc[pos * vocab + i] - e[i]));
            }
        }

        output.WriteLine($"{p.Name} {type}: max |loom - llama.cpp {type}| = {loomVsQ:E2}; llama.cpp's own |f32 - {type}| = {f32VsQ:E2}; " +
            $"|loom - llama.cpp f32| = {loomVsF32:E2}; within 1e-4 at {close}/{positions} positions; argmax agreement {agree}/{positions} (llama.cpp f32 vs {type}: {agreeF32}; llama.cpp {type} chunked as Loom runs vs whole: {agreeSelf}, max |Δ| {selfDiff:E2}; Loom vs llama.cpp chunked: {agreeChunked})");
        Assert.True(loomVsQ <= f32VsQ, $"Loom differs from llama.cpp's {type} run by {loomVsQ:E3}, more than llama.cpp's own F32-vs-{type} {f32VsQ:E3}");
        if (layers == 1)
        {
            Assert.True(close >= 0.9 * positions, $"logits agree to 1e-4 at only {close}/{positions} positions (< 90%)");
            Assert.True(agree >= 0.99 * positions, $"argmax agrees on {agree}/{positions} positions (< 99%)");
        }
        else
        {
            // Two layers amplify few-ulp differences into 1e-2 logit noise (see the class remarks): 98.0-99.8% here.
            Assert.True(agree >= 0.98 * positions, $"argmax agrees on {agree}/{positions} positions (< 98%)");
        }
    }

    /// <summary>Logits of every position, run as the engine batches: two thirds of each sequence as one chunk, then a token a step.</summary>
    internal static float[][] RunChunked(LlamaModel model, int[][] sequences)
    {
        int vocab = model.Config.VocabSize;
        var loom = sequences.Select(s => new float[s.Length * vocab]).ToArray();
        using var runner = new DirectRunner(model, sequences.Length, 256);
        int[] done = new int[sequences.Length];
        bool first = true;
        while (done.Select((d, i) => d < sequences[i].Length).Any(x => x))
        {
            var chunks = new List<SequenceChunk>();
            for (int s = 0; s < sequences.Length; s++)
            {
                if (done[s] >= sequences[s].Length) continue;
                int take = first ? Math.Max(1, sequences[s].Length * 2 / 3) : 1;
                chunks.Add(new SequenceChunk(s, sequences[s][done[s]..(done[s] + take)], done[s]));
            }

            var logits = runner.Step(chunks, allLogits: true);
            int row = 0;
            foreach (var ch in chunks)
                for (int i = 0; i < ch.Tokens.Length; i++, row++)
                    logits.AsSpan(row * vocab, vocab).CopyTo(loom[ch.Slot].AsSpan((ch.StartPos + i) * vocab, vocab));
            foreach (var ch in chunks) done[ch.Slot] += ch.Tokens.Length;
            first = false;
        }

        return loom;
    }

    private static float Gap(ReadOnlySpan<float> x)
    {
        int best = ArgMax(x);
        float second = float.NegativeInfinity;
        for (int i = 0; i < x.Length; i++) if (i != best) second = Math.Max(second, x[i]);
        return x[best] - second;
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
