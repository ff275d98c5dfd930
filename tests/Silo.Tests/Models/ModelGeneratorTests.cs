using System.Security.Cryptography;
using Loom.Kernels;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

public class ModelGeneratorTests
{
    public static TheoryData<string> TinyPresets => new() { "tiny", "tiny-qwen2", "tiny-qwen3", "tiny-mistral" };

    public static TheoryData<string> AllPresets
    {
        get
        {
            var d = new TheoryData<string>();
            foreach (var n in ModelGenerator.PresetNames) d.Add(n);
            return d;
        }
    }

    [Theory]
    [MemberData(nameof(AllPresets))]
    public void PresetConfigParsesBackToThePreset(string name)
    {
        var p = ModelPresets.Get(name);
        var c = ModelConfig.Parse(HfConfigJson.Config(p, DType.BF16));
        Assert.Equal(p.Architecture, c.Architecture);
        Assert.Equal(p.ArchitectureName, c.ArchitectureName);
        Assert.Equal(p.Hidden, c.HiddenSize);
        Assert.Equal(p.Layers, c.NumLayers);
        Assert.Equal(p.Heads, c.NumHeads);
        Assert.Equal(p.KvHeads, c.NumKvHeads);
        Assert.Equal(p.HeadDim, c.HeadDim);
        Assert.Equal(p.Ffn, c.IntermediateSize);
        Assert.Equal(p.Vocab, c.VocabSize);
        Assert.Equal(p.QkvBias, c.AttentionBias);
        Assert.Equal(p.Architecture == ModelArchitecture.Qwen3, c.QkNorm);
        Assert.Equal(p.Tied, c.TieWordEmbeddings);
        Assert.Equal(p.RopeTheta, c.RopeTheta);
        Assert.Equal(p.RmsEps, c.RmsNormEps);
        Assert.Equal(p.MaxPos, c.MaxPositionEmbeddings);
        Assert.Equal(p.RopeScaling, c.RopeScaling);
        Assert.Null(c.SlidingWindow);
        Assert.Equal("bfloat16", c.TorchDtype);
        Assert.Equal(p.BosTokenId, c.BosTokenId);
        Assert.Equal([p.EosTokenId], c.EosTokenIds);
    }

    [Fact]
    public void Llama3PresetHasLlama3RopeScaling()
    {
        var c = ModelConfig.Parse(HfConfigJson.Config(ModelPresets.Get("llama3-8b"), DType.BF16));
        Assert.Equal(new RopeScaling("llama3", 8, 1, 4, 8192), c.RopeScaling);
        Assert.Equal(500000, c.RopeTheta);
        Assert.False(c.TieWordEmbeddings);
    }

    [Fact]
    public void UnknownPresetListsTheKnownOnes()
    {
        var ex = Assert.Throws<ArgumentException>(() => ModelPresets.Get("gpt-5"));
        Assert.Contains("gpt-5", ex.Message);
        Assert.Contains("tiny-qwen2", ex.Message);
        Assert.Contains("llama3-8b", ex.Message);
    }

    [Theory]
    [MemberData(nameof(TinyPresets))]
    public void GeneratedFolderLoadsWithExpectedShapes(string name)
    {
        using var dir = new TempDir();
        var m = ModelGenerator.Generate(name, dir.Path, new GenerateOptions { DType = DType.F16, Seed = 7 });
        var c = ModelConfig.Load(dir.Path);
        // Records compare lists by reference, so compare the ids separately.
        Assert.Equal(m.Config with { EosTokenIds = [] }, c with { EosTokenIds = [] });
        Assert.Equal(m.Config.EosTokenIds, c.EosTokenIds);
        Assert.Equal("float16", c.TorchDtype);
        using var w = ModelWeights.Open(dir.Path);
        var specs = HfTensorLayout.For(c);
        Assert.Equal(specs.Select(s => s.Name).Order(StringComparer.Ordinal), w.Names.Order(StringComparer.Ordinal));
        foreach (var s in specs)
        {
            var v = w.Get(s.Name, s.Shape);
            Assert.Equal(DType.F16, v.DType);
            Assert.NotEqual(0, v.Data);
        }
        Assert.Equal(c.TieWordEmbeddings, !w.Contains("lm_head.weight"));
        Assert.Equal(c.AttentionBias, w.Contains("model.layers.1.self_attn.k_proj.bias"));
        Assert.Equal(c.QkNorm, w.Contains("model.layers.0.self_attn.q_norm.weight"));
    }

    [Fact]
    public void Qwen3NormsHaveHeadDimShape()
    {
        using var dir = new TempDir();
        ModelGenerator.Generate("tiny-qwen3", dir.Path);
        using var w = ModelWeights.Open(dir.Path);
        Assert.Equal([32], w.Get("model.layers.1.self_attn.k_norm.weight").Shape);
        Assert.Equal([128, 64], w.Get("model.layers.1.self_attn.q_proj.weight").Shape);
        Assert.Equal([64, 128], w.Get("model.layers.1.self_attn.o_proj.weight").Shape);
    }

    [Fact]
    public void OverridesShrinkLayersAndVocab()
    {
        using var dir = new TempDir();
        var m = ModelGenerator.Generate("qwen2.5-0.5b", dir.Path, new GenerateOptions { Layers = 1, Vocab = 300, DType = DType.BF16 });
        Assert.Equal(1, m.Config.NumLayers);
        Assert.Equal(300, m.Config.VocabSize);
        Assert.Equal(1, m.Config.BosTokenId); // the real 151643 no longer fits the vocab
        using var w = ModelWeights.Open(dir.Path);
        w.Get("model.embed_tokens.weight", 300, 896);
        w.Get("model.layers.0.self_attn.k_proj.bias", 128);
        Assert.False(w.Contains("model.layers.1.input_layernorm.weight"));
    }

    [Fact]
    public void WeightsAreSaneNotDegenerate()
    {
        using var dir = new TempDir();
        ModelGenerator.Generate("tiny-qwen2", dir.Path);
        using var w = ModelWeights.Open(dir.Path);
        float[] Read(string n) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(w.Files[0].GetBytes(n)).ToArray();
        var norm = Read("model.layers.0.input_layernorm.weight");
        Assert.All(norm, x => Assert.InRange(x, 0.8f, 1.2f));
        Assert.True(norm.Distinct().Count() > 32);
        var bias = Read("model.layers.0.self_attn.q_proj.bias");
        Assert.All(bias, x => Assert.InRange(x, -0.2f, 0.2f));
        Assert.Contains(bias, x => x != 0);
        var q = Read("model.layers.0.self_attn.q_proj.weight");
        double std = Math.Sqrt(q.Average(x => (double)x * x));
        Assert.InRange(std, 0.8 / 8, 1.2 / 8); // 1/sqrt(64)
    }

    [Fact]
    public void SameSeedSameBytesDifferentSeedDifferentBytes()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using var c = new TempDir();
        ModelGenerator.Generate("tiny", a.Path, new GenerateOptions { Seed = 42, DType = DType.BF16 });
        ModelGenerator.Generate("tiny", b.Path, new GenerateOptions { Seed = 42, DType = DType.BF16 });
        ModelGenerator.Generate("tiny", c.Path, new GenerateOptions { Seed = 43, DType = DType.BF16 });
        foreach (var f in new[] { "config.json", "generation_config.json", "model.safetensors" })
            Assert.Equal(Hash(a.File(f)), Hash(b.File(f)));
        Assert.NotEqual(Hash(a.File("model.safetensors")), Hash(c.File("model.safetensors")));
        Assert.Equal(Hash(a.File("config.json")), Hash(c.File("config.json")));
    }

    [Fact]
    public void SmallShardSizeWritesIndexedShardsThatLoadLikeOneFile()
    {
        using var single = new TempDir();
        using var sharded = new TempDir();
        ModelGenerator.Generate("tiny", single.Path, new GenerateOptions { Seed = 3 });
        var m = ModelGenerator.Generate("tiny", sharded.Path, new GenerateOptions { Seed = 3, ShardSizeBytes = 100_000 });
        Assert.True(m.WeightFiles.Count > 1);
        Assert.True(File.Exists(sharded.File(ModelWeights.IndexFileName)));
        Assert.False(File.Exists(sharded.File(ModelWeights.SingleFileName)));
        Assert.EndsWith($"model-00001-of-{m.WeightFiles.Count:D5}.safetensors", m.WeightFiles[0]);

        using var ws = ModelWeights.Open(single.Path);
        using var wm = ModelWeights.Open(sharded.Path);
        Assert.Equal(wm.Files.Count, m.WeightFiles.Count);
        Assert.Equal(ws.Names.Order(StringComparer.Ordinal), wm.Names.Order(StringComparer.Ordinal));
        foreach (var n in ws.Names)
        {
            var a = ws.Files[0].GetBytes(n).ToArray();
            var file = wm.Files.Single(f => f.Contains(n));
            Assert.Equal(file.Path, wm.FileOf(n));
            Assert.Equal(a, file.GetBytes(n).ToArray());
        }
        Assert.Contains(wm.Names, n => wm.FileOf(n) != wm.FileOf("model.embed_tokens.weight"));
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
