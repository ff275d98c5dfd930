using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>
/// The runtime computes the demo model's weights from its seed (<see cref="SeededWeights"/>) instead
/// of writing them: every tensor must be byte-identical to what the tools' generator writes for the
/// same seed and dtype, and a seeded folder must load like its generated twin on both load paths.
/// </summary>
public sealed class SeededWeightsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-seeded-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void AssertSameTensors(ModelWeights files, SeededWeights seeded, ModelConfig config)
    {
        var specs = HfTensorLayout.For(config);
        Assert.Equal(specs.Select(s => s.Name).Order(StringComparer.Ordinal), files.Names.Order(StringComparer.Ordinal));
        foreach (var spec in specs)
        {
            var want = files.Get(spec.Name);
            var got = seeded.Get(spec.Name, spec.Shape);
            Assert.Equal(want.DType, got.DType);
            Assert.Equal(want.Shape, got.Shape);
            Assert.True(want.Bytes().SequenceEqual(got.Bytes()), $"{spec.Name} differs from the generated file");
        }
    }

    [Theory]
    [InlineData("tiny", DType.F32, 3UL)]
    [InlineData("tiny-qwen2", DType.F16, 4UL)]
    [InlineData("tiny-qwen3", DType.BF16, 5UL)]
    public void SeededTensorsEqualTheGeneratedFiles(string preset, DType dtype, ulong seed)
    {
        var dir = Path.Combine(_dir, preset);
        // Small shards, so the comparison also goes through the index and several files.
        ModelGenerator.Generate(preset, dir, new GenerateOptions { DType = dtype, Seed = seed, ShardSizeBytes = 64 << 10 });
        Assert.True(File.Exists(Path.Combine(dir, ModelWeights.IndexFileName)));
        var config = ModelConfig.Load(dir);
        using var files = ModelWeights.Open(dir);
        using var seeded = new SeededWeights(config, seed, dtype);
        AssertSameTensors(files, seeded, config);
        Assert.False(seeded.Contains("lm_head.bias"));
        Assert.Throws<ModelLoadException>(() => seeded.Get("model.embed_tokens.weight", 1, 2));
    }

    [Fact]
    public void TheDemoFolderHoldsNoWeightsAndItsSeedGivesTheGeneratedDemoModel()
    {
        var demo = DemoModelFiles.EnsureCreated(root: _dir);
        Assert.Empty(Directory.EnumerateFiles(demo, "*.safetensors*"));
        var generated = Path.Combine(_dir, "generated-demo");
        ModelGenerator.Generate(DemoModelFiles.Preset, generated, new GenerateOptions { DType = DemoModelFiles.WeightDType, Seed = DemoModelFiles.Seed });
        var config = ModelConfig.Load(demo);
        Assert.Equal(File.ReadAllText(Path.Combine(generated, "config.json")), File.ReadAllText(Path.Combine(demo, "config.json")));
        using var files = ModelWeights.Open(generated);
        using var seeded = SeededWeights.TryOpen(demo, config);
        Assert.NotNull(seeded);
        Assert.Equal((DemoModelFiles.Seed, DType.BF16), (seeded.Seed, seeded.DType));
        AssertSameTensors(files, seeded, config);
    }

    [Fact]
    public void ASeededFolderLoadsLikeItsGeneratedTwinSingleAndTensorParallel()
    {
        var preset = ModelPresets.Tiny with { Name = "tiny-seeded", Heads = 8, KvHeads = 4, HeadDim = 8 };
        var generated = Path.Combine(_dir, "generated");
        ModelGenerator.Generate(preset, generated, new GenerateOptions { DType = DType.BF16, Seed = 21 });
        var seededDir = Path.Combine(_dir, "seeded");
        Directory.CreateDirectory(seededDir);
        foreach (var f in new[] { "config.json", "generation_config.json" }) File.Copy(Path.Combine(generated, f), Path.Combine(seededDir, f));
        SeededWeights.WriteMarker(seededDir, 21, DType.BF16);
        int[] prompt = [5, 9, 100, 7, 3];

        using (var backend = new CpuBackend(1))
        using (var a = LlamaModel.Load(generated, backend))
        using (var b = LlamaModel.Load(seededDir, backend))
        using (var ra = new DirectRunner(a, 1, 16))
        using (var rb = new DirectRunner(b, 1, 16))
            Assert.Equal(ra.Step([new SequenceChunk(0, prompt, 0)], allLogits: true), rb.Step([new SequenceChunk(0, prompt, 0)], allLogits: true));

        using var tpA = TensorParallelModel.Load(generated, 2, _ => new CpuBackend(1), numBlocks: 4, blockSize: 4);
        using var tpB = TensorParallelModel.Load(seededDir, 2, _ => new CpuBackend(1), numBlocks: 4, blockSize: 4);
        var batch = OneSequence(prompt, blockSize: 4, maxBlocks: 2);
        Assert.Equal(tpA.ForwardToHost(batch), tpB.ForwardToHost(batch));
    }

    [Fact]
    public void ABrokenMarkerIsAClearError()
    {
        var dir = Path.Combine(_dir, "broken");
        ModelGenerator.Generate("tiny", dir, new GenerateOptions { Seed = 1 });
        var config = ModelConfig.Load(dir);
        File.WriteAllText(Path.Combine(dir, SeededWeights.MarkerFileName), """{"seed": 1, "dtype": "int4"}""");
        Assert.Contains("int4", Assert.Throws<ModelLoadException>(() => SeededWeights.TryOpen(dir, config)).Message);
        File.WriteAllText(Path.Combine(dir, SeededWeights.MarkerFileName), "{");
        Assert.Contains(SeededWeights.MarkerFileName, Assert.Throws<ModelLoadException>(() => SeededWeights.TryOpen(dir, config)).Message);
        // Generating into the folder again drops the marker, so the written files are what loads.
        ModelGenerator.Generate("tiny", dir, new GenerateOptions { Seed = 1 });
        Assert.Null(SeededWeights.TryOpen(dir, config));
    }

    /// <summary>One sequence's prefill with logits for every position, blocks 0..maxBlocks-1.</summary>
    private static ForwardBatch OneSequence(int[] ids, int blockSize, int maxBlocks)
    {
        var b = new ForwardBatch();
        b.EnsureCapacity(ids.Length, 1, maxBlocks);
        var m = b.Attention;
        m.NumSeqs = 1;
        m.QueryStart[0] = 0;
        m.QueryStart[1] = ids.Length;
        m.SeqLens[0] = ids.Length;
        for (int j = 0; j < maxBlocks; j++) m.BlockTables[j] = j;
        for (int i = 0; i < ids.Length; i++)
        {
            b.TokenIds[i] = ids[i];
            b.Positions[i] = i;
            b.SlotMapping[i] = i;
            b.LogitRows[i] = i;
        }
        b.NumTokens = ids.Length;
        b.NumLogitRows = ids.Length;
        return b;
    }
}
