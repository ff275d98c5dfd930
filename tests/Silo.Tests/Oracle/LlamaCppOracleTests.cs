using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;
using Xunit.Abstractions;

namespace Loom.Silo.Tests.Oracle;

/// <summary>
/// Loom's logits against llama.cpp on the same random weights (written once as safetensors for
/// Loom and once as GGUF for llama.cpp). Selected by `--filter FullyQualifiedName~Oracle`.
/// </summary>
public sealed class LlamaCppOracleTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-oracle-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Presets => new() { "tiny", "tiny-qwen2", "tiny-mistral" };

    [Theory]
    [MemberData(nameof(Presets))]
    public void F32LogitsMatchLlamaCppAtEveryPosition(string preset)
    {
        var (maxDiff, argmaxMismatches, positions) = Compare(preset, DType.F32, GgufType.F32);
        output.WriteLine($"{preset} f32: max |Δlogit| = {maxDiff:E2} over {positions} positions, argmax mismatches {argmaxMismatches}");
        Assert.True(maxDiff < 1e-4, $"max abs diff {maxDiff} >= 1e-4");
        Assert.Equal(0, argmaxMismatches);
    }

    /// <summary>
    /// bf16 checkpoint vs llama.cpp on F32 copies of the same bf16-rounded weights, so both sides see
    /// identical parameters; what differs is accumulation order only. Loom keeps bf16 weights and
    /// accumulates in fp32, so the F32 tolerance should still hold; 1e-3 leaves room for the
    /// widened path's different summation order.
    /// </summary>
    [Fact]
    public void Bf16LogitsMatchLlamaCppWithinBf16Tolerance()
    {
        var (maxDiff, argmaxMismatches, positions) = Compare("tiny", DType.BF16, GgufType.F32);
        output.WriteLine($"tiny bf16: max |Δlogit| = {maxDiff:E2} over {positions} positions, argmax mismatches {argmaxMismatches}");
        Assert.True(maxDiff < 1e-3, $"max abs diff {maxDiff} >= 1e-3");
        Assert.Equal(0, argmaxMismatches);
    }

    /// <summary>
    /// Llama 3.1+ rope scaling: Loom reads it from config.json's rope_scaling and, in a GGUF file,
    /// from the rope_freqs.weight factors llama.cpp's converter writes instead. Both match llama.cpp
    /// on the file. original_max_position_embeddings 64 puts tiny's head_dim-16 frequencies on all
    /// three sides of the blend (kept, blended, divided by the factor).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Llama3RopeScalingMatchesLlamaCppFromConfigAndFromGgufRopeFreqs(bool fromGguf)
    {
        var preset = ModelPresets.Tiny with { Name = "tiny-llama3", RopeScaling = new RopeScaling("llama3", 8, 1, 4, 64) };
        var (maxDiff, argmaxMismatches, positions) = Compare(preset, DType.F32, GgufType.F32, fromGguf);
        output.WriteLine($"tiny llama3 rope ({(fromGguf ? "GGUF rope_freqs" : "config.json")}): max |Δlogit| = {maxDiff:E2} over {positions} positions, argmax mismatches {argmaxMismatches}");
        Assert.True(maxDiff < 1e-4, $"max abs diff {maxDiff} >= 1e-4");
        Assert.Equal(0, argmaxMismatches);
    }

    private (double MaxDiff, int ArgmaxMismatches, int Positions) Compare(string presetName, DType dtype, GgufType ggufType) =>
        Compare(ModelPresets.Get(presetName), dtype, ggufType, fromGguf: false);

    private (double MaxDiff, int ArgmaxMismatches, int Positions) Compare(ModelPreset preset, DType dtype, GgufType ggufType, bool fromGguf)
    {
        var modelDir = Path.Combine(_dir, preset.Name);
        var gguf = Path.Combine(_dir, preset.Name + ".gguf");
        ModelGenerator.Generate(preset, modelDir,
            new GenerateOptions { DType = dtype, Seed = 1234, GgufPath = gguf, GgufType = ggufType });

        using var backend = new CpuBackend();
        using var model = LlamaModel.Load(fromGguf ? gguf : modelDir, backend);
        if (fromGguf && preset.RopeScaling is not null) Assert.NotNull(model.Config.RopeFreqFactors);
        int vocab = model.Config.VocabSize;
        using var reference = new LlamaCppReference(gguf);
        Assert.Equal(vocab, reference.VocabSize);

        var rng = new Random(7);
        int[][] sequences = [.. new[] { 1, 9, 40, 97 }.Select(n => Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab)).ToArray())];

        // Loom runs all sequences together in one flat batch, chunked: the first part of each as a
        // prefill chunk, then the rest one token per step, the way the engine mixes them.
        var loom = sequences.Select(s => new float[s.Length * vocab]).ToArray();
        using (var runner = new DirectRunner(model, sequences.Length, 128))
        {
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
        }

        double maxDiff = 0;
        int mismatches = 0, positions = 0;
        for (int s = 0; s < sequences.Length; s++)
        {
            var expected = reference.AllLogits(sequences[s]);
            for (int p = 0; p < sequences[s].Length; p++, positions++)
            {
                var a = loom[s].AsSpan(p * vocab, vocab);
                var e = expected.AsSpan(p * vocab, vocab);
                for (int i = 0; i < vocab; i++) maxDiff = Math.Max(maxDiff, Math.Abs(a[i] - e[i]));
                if (ArgMax(a) != ArgMax(e)) mismatches++;
            }
        }
        return (maxDiff, mismatches, positions);
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
