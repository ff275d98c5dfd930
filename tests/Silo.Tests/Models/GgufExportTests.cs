using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

public class GgufExportTests
{
    [Fact]
    public void PermutationInterleavesTheTwoHalvesOfEachHead()
    {
        // d = 4: GGUF rows (0,1,2,3) take HF rows (0,2,1,3); the second head is offset by d.
        Assert.Equal([0, 2, 1, 3, 4, 6, 5, 7], Enumerable.Range(0, 8).Select(r => GgufWeights.PermutedSourceRow(r, 4)));
    }

    [Fact]
    public void Llama3RopeFactorsSpanOneToFactor()
    {
        var f = GgufModelWriter.Llama3RopeFactors(500000, 128, new RopeScaling("llama3", 8, 1, 4, 8192));
        Assert.Equal(64, f.Length);
        Assert.Equal(1f, f[0]);
        Assert.Equal(8f, f[^1]);
        for (int i = 1; i < f.Length; i++) Assert.True(f[i] >= f[i - 1]);
        Assert.Contains(f, x => x > 1f && x < 8f); // the smooth band exists
    }

    [Fact]
    public void HeaderIsGgufV3WithAlignedData()
    {
        using var dir = new TempDir();
        var gguf = dir.File("m.gguf");
        ModelGenerator.Generate("tiny", dir.Path, new GenerateOptions { GgufPath = gguf });
        var bytes = File.ReadAllBytes(gguf);
        Assert.Equal("GGUF", Encoding.ASCII.GetString(bytes, 0, 4));
        Assert.Equal(3u, BitConverter.ToUInt32(bytes, 4));
        Assert.Equal(3UL + 2 * 9, BitConverter.ToUInt64(bytes, 8)); // embed, output_norm, output + 9 per layer
        Assert.Equal(0, bytes.Length % 32);
        var text = Encoding.ASCII.GetString(bytes);
        foreach (var key in new[] { "general.architecture", "llama.rope.freq_base", "llama.attention.head_count_kv", "tokenizer.ggml.tokens", "<0x7F>", "tok_255" })
            Assert.Contains(key, text);
        Assert.DoesNotContain("<0x80>", text);
    }

    [Fact]
    public void Llama3RopeScalingExportsRopeFreqsThatLlamaCppAccepts()
    {
        using var dir = new TempDir();
        var gguf = dir.File("m.gguf");
        var preset = ModelPresets.Tiny with { Name = "tiny-llama3", RopeScaling = new RopeScaling("llama3", 8, 1, 4, 64) };
        ModelGenerator.Generate(preset, dir.Path, new GenerateOptions { GgufPath = gguf });
        Assert.Contains("rope_freqs.weight", Encoding.ASCII.GetString(File.ReadAllBytes(gguf)));
        var p = new ModelParams(gguf) { ContextSize = 32, GpuLayerCount = 0 };
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var batch = new LLamaBatch();
        batch.Add(1, 0, (LLamaSeqId)0, true);
        Assert.Equal(DecodeResult.Ok, ctx.NativeHandle.Decode(batch));
        Assert.All(ctx.NativeHandle.GetLogitsIth(0).ToArray(), x => Assert.True(float.IsFinite(x)));
    }
}
