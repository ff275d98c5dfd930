using System.Text;
using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Quant;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>The GGUF reader: config and weights from the file, the Q/K un-permutation, paths, and errors that name what is wrong.</summary>
public class GgufReaderTests
{
    private static (TempDir Dir, string Gguf, ModelConfig Config) Make(string preset, GgufType type, ModelPreset? custom = null)
    {
        var dir = new TempDir();
        var gguf = dir.File($"{preset}.gguf");
        var g = ModelGenerator.Generate(custom ?? ModelPresets.Get(preset), dir.File("hf"), new GenerateOptions { DType = DType.F32, Seed = 5, GgufPath = gguf, GgufType = type });
        return (dir, gguf, g.Config);
    }

    private static float[] Logits(LlamaModel model, int[] tokens)
    {
        using var runner = new DirectRunner(model, 1, 64);
        return runner.Step([new SequenceChunk(0, tokens, 0)], allLogits: true);
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-qwen2")]
    [InlineData("tiny-qwen3")]
    [InlineData("tiny-mistral")]
    public void GgufF32FileGivesTheHfFoldersLogitsExactly(string preset)
    {
        var (dir, gguf, config) = Make(preset, GgufType.F32);
        using var _ = dir;
        using var backend = new CpuBackend(2);
        using var fromHf = LlamaModel.Load(dir.File("hf"), backend);
        using var fromGguf = LlamaModel.Load(gguf, backend);
        var g = fromGguf.Config;
        // GGUF stores eps and theta as float32; the rest comes through exactly.
        Assert.Equal((float)config.RmsNormEps, (float)g.RmsNormEps);
        Assert.Equal((float)config.RopeTheta, (float)g.RopeTheta);
        // llama.cpp writes Mistral as arch "llama" (the same network), so it reads back as Llama.
        if (config.Architecture == ModelArchitecture.Mistral) config = config with { Architecture = ModelArchitecture.Llama, ArchitectureName = "LlamaForCausalLM" };
        Assert.Equal(config with { TorchDtype = "gguf", RmsNormEps = 0, RopeTheta = 0, BosTokenId = 1, EosTokenIds = [], SlidingWindow = null },
            g with { RmsNormEps = 0, RopeTheta = 0, BosTokenId = 1, EosTokenIds = [], SlidingWindow = null });
        int[] tokens = [5, 77, 200, 3, 150, 9, 31];
        // Same fp32 weights (Q/K rows put back in HF order), same kernels: the same bits.
        Assert.Equal(Logits(fromHf, tokens), Logits(fromGguf, tokens));
    }

    [Theory]
    [InlineData(GgufType.F16)]
    [InlineData(GgufType.BF16)]
    public void GgufHalfPrecisionFilesLoad(GgufType type)
    {
        var (dir, gguf, _) = Make("tiny", type);
        using var _d = dir;
        using var backend = new CpuBackend(1);
        using var fromHf = LlamaModel.Load(dir.File("hf"), backend);
        using var fromGguf = LlamaModel.Load(gguf, backend);
        var a = Logits(fromHf, [1, 2, 3, 4]);
        var b = Logits(fromGguf, [1, 2, 3, 4]);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 0.05, $"logit {i}: {a[i]} vs {b[i]}");
    }

    [Fact]
    public unsafe void GgufQuantizedTensorsDecodeToBf16ForBackendsWithoutQuantizedKernels()
    {
        var (dir, gguf, _) = Make("tiny", GgufType.Q8_0);
        using var _d = dir;
        var (file, config, weights) = GgufModel.Open(gguf, dequantizeToBf16: true);
        using (file)
        using (weights)
        {
            var v = weights.Get("model.layers.0.mlp.down_proj.weight", config.HiddenSize, config.IntermediateSize);
            Assert.Equal(DType.BF16, v.DType);
            var t = file.Tensors["blk.0.ffn_down.weight"];
            var row = new float[config.IntermediateSize];
            fixed (float* r = row) GgmlBlocks.DequantizeRow(DType.Q8_0, (byte*)file.DataOf(t), r, row.Length);
            for (int i = 0; i < row.Length; i++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(row[i]) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(row[i]) >> 16) & 1) >> 16, ((ushort*)v.Data)[i]);
        }
    }

    [Fact]
    public void GgufVersion2FilesLoad()
    {
        var (dir, gguf, _) = Make("tiny", GgufType.Q8_0);
        using var _d = dir;
        var bytes = File.ReadAllBytes(gguf);
        BitConverter.GetBytes(2u).CopyTo(bytes, 4);
        File.WriteAllBytes(gguf, bytes);
        using var f = GgufFile.Open(gguf);
        Assert.Equal(2u, f.Version);
        using var backend = new CpuBackend(1);
        using var m = LlamaModel.Load(gguf, backend);
        Assert.Equal(2, m.Config.NumLayers);
    }

    [Fact]
    public void GgufPathMayBeAFolderHoldingOneFile()
    {
        var (dir, gguf, _) = Make("tiny", GgufType.Q4_0);
        using var _d = dir;
        var folder = dir.File("served");
        Directory.CreateDirectory(folder);
        File.Move(gguf, Path.Combine(folder, "model.gguf"));
        Assert.Equal(Path.Combine(folder, "model.gguf"), GgufModel.Resolve(folder));
        Assert.Null(GgufModel.Resolve(dir.File("hf"))); // a Hugging Face folder stays one
        File.Copy(Path.Combine(folder, "model.gguf"), Path.Combine(folder, "other.gguf"));
        var ex = Assert.Throws<ModelLoadException>(() => GgufModel.Resolve(folder));
        Assert.Contains("2 .gguf files", ex.Message);
    }

    [Fact]
    public void GgufTokenizerComesFromTheFileUnlessATokenizerJsonIsBesideIt()
    {
        var (dir, gguf, _) = Make("tiny", GgufType.Q8_0);
        using var _d = dir;
        var folder = dir.File("served");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "m.gguf");
        File.Move(gguf, path);
        var (json, config) = GgufModel.TokenizerFiles(path);
        Assert.Contains("\"tok_200\"", json); // the file's own vocabulary
        Assert.Contains("\"add_bos_token\":true", config);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), "{\"beside\":1}");
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{}");
        Assert.Equal(("{\"beside\":1}", "{}"), GgufModel.TokenizerFiles(folder));
    }

    [Fact]
    public void GgufWrongMagicIsNamed()
    {
        var (dir, gguf, _) = Make("tiny", GgufType.Q8_0);
        using var _d = dir;
        var bytes = File.ReadAllBytes(gguf);
        bytes[3] = (byte)'X';
        File.WriteAllBytes(gguf, bytes);
        var ex = Assert.Throws<ModelLoadException>(() => GgufFile.Open(gguf));
        Assert.Contains("wrong magic", ex.Message);
    }

    [Fact]
    public void GgufTruncatedFileNamesTheTensor()
    {
        var (dir, gguf, _) = Make("tiny", GgufType.Q8_0);
        using var _d = dir;
        var bytes = File.ReadAllBytes(gguf);
        File.WriteAllBytes(gguf, bytes[..(bytes.Length - 100)]);
        var ex = Assert.Throws<ModelLoadException>(() => GgufFile.Open(gguf));
        Assert.Contains("truncated", ex.Message);
        Assert.Contains("tensor '", ex.Message);

        File.WriteAllBytes(gguf, bytes[..200]); // inside the metadata
        ex = Assert.Throws<ModelLoadException>(() => GgufFile.Open(gguf));
        Assert.Contains("truncated while reading", ex.Message);
    }

    [Fact]
    public void GgufUnknownTensorTypeIsNamed()
    {
        var (dir, gguf, _) = Make("tiny", GgufType.Q8_0);
        using var _d = dir;
        var bytes = File.ReadAllBytes(gguf);
        // The tensor infos follow the metadata; patch output_norm.weight's type (F32 = 0) to Q4_1 (3).
        int at = IndexOf(bytes, "output_norm.weight") + "output_norm.weight".Length;
        uint dims = BitConverter.ToUInt32(bytes, at);
        BitConverter.GetBytes(3u).CopyTo(bytes, at + 4 + 8 * (int)dims);
        File.WriteAllBytes(gguf, bytes);
        var ex = Assert.Throws<ModelLoadException>(() => GgufFile.Open(gguf));
        Assert.Contains("'output_norm.weight'", ex.Message);
        Assert.Contains("Q4_1", ex.Message);
    }

    [Fact]
    public void GgufLlama3RopeFreqsGiveTheHfFoldersRotaryFrequencies()
    {
        // original_max_position_embeddings 64 puts tiny's 8 frequency pairs on all three sides of llama3's blend.
        var preset = ModelPresets.Tiny with { Name = "tiny-llama3", RopeScaling = new RopeScaling("llama3", 8, 1, 4, 64) };
        var (dir, gguf, config) = Make("tiny-llama3", GgufType.F32, preset);
        using var _ = dir;
        using var backend = new CpuBackend(2);
        using var fromHf = LlamaModel.Load(dir.File("hf"), backend);
        using var fromGguf = LlamaModel.Load(gguf, backend);
        Assert.Null(fromGguf.Config.RopeScaling);
        Assert.Equal(GgufModelWriter.Llama3RopeFactors(config.RopeTheta, config.HeadDim, preset.RopeScaling!), fromGguf.Config.RopeFreqFactors);
        var hf = RotaryEmbedding.InverseFrequencies(config);
        var fromFactors = RotaryEmbedding.InverseFrequencies(fromGguf.Config);
        var unscaled = RotaryEmbedding.InverseFrequencies(config with { RopeScaling = null });
        for (int i = 0; i < hf.Length; i++) Assert.Equal(hf[i], fromFactors[i], hf[i] * 1e-6);
        Assert.True(hf[^1] < unscaled[^1] / 7, "the lowest frequency is divided by the factor");

        // Forty positions in, the scaled frequencies change the logits; from the file they are the HF folder's.
        int[] tokens = [.. Enumerable.Range(0, 40).Select(i => 3 + i * 37 % 250)];
        var expected = Logits(fromHf, tokens);
        var actual = Logits(fromGguf, tokens);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-4);
    }

    [Fact]
    public void GgufRopeFreqsOfTheWrongLengthAreNamed()
    {
        var preset = ModelPresets.Tiny with { Name = "tiny-llama3", RopeScaling = new RopeScaling("llama3", 8, 1, 4, 64) };
        var (dir, gguf, _) = Make("tiny-llama3", GgufType.F32, preset);
        using var _d = dir;
        var bytes = File.ReadAllBytes(gguf);
        // rope_freqs.weight's info: name, n_dims = 1, then its one dimension (head_dim / 2 = 8).
        int at = IndexOf(bytes, "rope_freqs.weight") + "rope_freqs.weight".Length;
        Assert.Equal(1u, BitConverter.ToUInt32(bytes, at));
        Assert.Equal(8UL, BitConverter.ToUInt64(bytes, at + 4));
        BitConverter.GetBytes(6UL).CopyTo(bytes, at + 4);
        File.WriteAllBytes(gguf, bytes);
        using var backend = new CpuBackend(1);
        var ex = Assert.Throws<ModelLoadException>(() => LlamaModel.Load(gguf, backend));
        Assert.Contains("'rope_freqs.weight'", ex.Message);
        Assert.Contains("expected F32 [8]", ex.Message);
    }

    [Fact]
    public void GgufShapeMismatchAndMissingKeysAreNamed()
    {
        var (dir, gguf, _) = Make("tiny", GgufType.Q8_0);
        using var _d = dir;
        var good = File.ReadAllBytes(gguf);
        var bytes = (byte[])good.Clone();
        int at = IndexOf(bytes, "llama.feed_forward_length") + "llama.feed_forward_length".Length;
        BitConverter.GetBytes(96u).CopyTo(bytes, at + 4); // after the value type
        File.WriteAllBytes(gguf, bytes);
        using var backend = new CpuBackend(1);
        var ex = Assert.Throws<ModelLoadException>(() => LlamaModel.Load(gguf, backend));
        Assert.Contains("tensor 'blk.0.ffn_gate.weight'", ex.Message);
        Assert.Contains("expected [96,", ex.Message);

        bytes = (byte[])good.Clone();
        at = IndexOf(bytes, "llama.block_count");
        Encoding.ASCII.GetBytes("llama.block_cnt__").CopyTo(bytes, at);
        File.WriteAllBytes(gguf, bytes);
        ex = Assert.Throws<ModelLoadException>(() => LlamaModel.Load(gguf, backend));
        Assert.Contains("missing metadata key 'llama.block_count'", ex.Message);
    }

    private static int IndexOf(byte[] haystack, string needle)
    {
        var n = Encoding.UTF8.GetBytes(needle);
        int i = haystack.AsSpan().IndexOf(n);
        Assert.True(i >= 0, $"'{needle}' not found");
        return i;
    }
}
