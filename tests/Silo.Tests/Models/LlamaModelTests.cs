using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>LlamaModel on the CPU backend against the double-precision transformers transcription.</summary>
public sealed class LlamaModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-model-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, string> Cases => new()
    {
        { "tiny", "f32" }, { "tiny-qwen2", "f32" }, { "tiny-qwen3", "f32" }, { "tiny-mistral", "f32" },
        { "tiny-llama3-rope", "f32" }, { "tiny", "bf16" }, { "tiny-qwen3", "f16" },
    };

    private static ModelPreset Preset(string name) => name == "tiny-llama3-rope"
        // Long wavelengths only exist with a high theta; original context 64 puts every band inside 0..100 positions.
        ? ModelPresets.Tiny with { Name = name, RopeTheta = 500000, RopeScaling = new RopeScaling("llama3", 8, 1, 4, 64) }
        : ModelPresets.Get(name);

    [Theory]
    [MemberData(nameof(Cases))]
    public void LogitsMatchTheDoublePrecisionReferenceAtEveryPosition(string preset, string dtype)
    {
        var dir = Path.Combine(_dir, preset + dtype);
        var d = dtype switch { "f32" => DType.F32, "f16" => DType.F16, _ => DType.BF16 };
        ModelGenerator.Generate(Preset(preset), dir, new GenerateOptions { DType = d, Seed = 99 });
        var config = ModelConfig.Load(dir);
        var rng = new Random(11);
        int[] tokens = Enumerable.Range(0, 100).Select(_ => rng.Next(config.VocabSize)).ToArray();
        double[][] expected;
        using (var w = ModelWeights.Open(dir)) expected = HfReferenceForward.Logits(config, w, tokens);

        using var backend = new CpuBackend(2);
        using var model = LlamaModel.Load(dir, backend);
        using var runner = new DirectRunner(model, 2, 128);
        // Prefill 60 tokens as one chunk, then decode the rest one token at a time beside a second sequence.
        var got = new List<float[]>();
        var logits = runner.Step([new SequenceChunk(1, tokens[..7], 0), new SequenceChunk(0, tokens[..60], 0)], allLogits: true);
        int v = config.VocabSize;
        for (int p = 0; p < 60; p++) got.Add(logits.AsSpan((7 + p) * v, v).ToArray());
        for (int p = 60; p < tokens.Length; p++)
        {
            logits = runner.Step([new SequenceChunk(0, [tokens[p]], p), new SequenceChunk(1, [tokens[p % 7]], 7 + p - 60)]);
            got.Add(logits.AsSpan(0, v).ToArray());
        }

        double maxDiff = 0;
        for (int p = 0; p < tokens.Length; p++)
            for (int i = 0; i < v; i++) maxDiff = Math.Max(maxDiff, Math.Abs(got[p][i] - expected[p][i]));
        Assert.True(maxDiff < 2e-4, $"{preset}/{dtype}: max abs diff {maxDiff}");
    }

    [Fact]
    public void TokenOutsideTheVocabularyIsRejected()
    {
        var dir = Path.Combine(_dir, "oov");
        ModelGenerator.Generate(ModelPresets.Tiny, dir, new GenerateOptions());
        using var backend = new CpuBackend(1);
        using var model = LlamaModel.Load(dir, backend);
        using var runner = new DirectRunner(model, 1, 16);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => runner.Step([new SequenceChunk(0, [1, 256], 0)]));
        Assert.Contains("256", e.Message);
    }

    [Fact]
    public void MissingTensorNamesTheTensorAndFile()
    {
        var dir = Path.Combine(_dir, "missing");
        ModelGenerator.Generate(ModelPresets.Tiny, dir, new GenerateOptions());
        var config = ModelConfig.Load(dir) with { NumLayers = 3 };
        using var weights = ModelWeights.Open(dir);
        using var backend = new CpuBackend(1);
        var e = Assert.Throws<ModelLoadException>(() => LlamaModel.Load(config, weights, backend));
        Assert.Contains("model.layers.2.", e.Message);
        Assert.Contains("model.safetensors", e.Message);
    }
}
