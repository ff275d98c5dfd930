using LLama;
using LLama.Common;
using LLama.Native;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>The GGUF export must load in llama.cpp (LLamaSharp 0.30.0) and produce sane logits.</summary>
public class GgufLlamaSharpTests
{
    [Theory]
    [InlineData("tiny", GgufType.F32)]
    [InlineData("tiny", GgufType.F16)]
    [InlineData("tiny-qwen2", GgufType.F32)]
    [InlineData("tiny-qwen2", GgufType.F16)]
    [InlineData("tiny-qwen3", GgufType.F32)]
    [InlineData("tiny-mistral", GgufType.F32)]
    public void GgufLoadsAndDecodesToFiniteDistinctLogits(string preset, GgufType type)
    {
        using var dir = new TempDir();
        var gguf = dir.File("model.gguf");
        var m = ModelGenerator.Generate(preset, dir.Path, new GenerateOptions { Seed = 11, GgufPath = gguf, GgufType = type });
        int vocab = m.Config.VocabSize;

        var p = new ModelParams(gguf) { ContextSize = 64, GpuLayerCount = 0, FlashAttention = false, BatchSize = 64 };
        using var weights = LLamaWeights.LoadFromFile(p);
        Assert.Equal(vocab, weights.Vocab.Count);
        using var ctx = weights.CreateContext(p);

        int[] tokens = [1, 72, 105, 200, 33, 250, 140, 7];
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Length; i++) batch.Add(tokens[i], i, (LLamaSeqId)0, true);
        Assert.Equal(DecodeResult.Ok, ctx.NativeHandle.Decode(batch));

        var argmaxes = new HashSet<int>();
        for (int i = 0; i < tokens.Length; i++)
        {
            var logits = ctx.NativeHandle.GetLogitsIth(i);
            Assert.Equal(vocab, logits.Length);
            float max = float.NegativeInfinity;
            int arg = -1;
            for (int t = 0; t < logits.Length; t++)
            {
                Assert.True(float.IsFinite(logits[t]), $"logit {t} at position {i} is {logits[t]}");
                if (logits[t] > max) { max = logits[t]; arg = t; }
            }
            argmaxes.Add(arg);
        }
        // Random weights should still let the prediction depend on the input.
        Assert.True(argmaxes.Count >= 3, $"only {argmaxes.Count} distinct argmaxes over {tokens.Length} positions");
    }

    /// <summary>
    /// llama.cpp on the GGUF matches a double-precision HF-layout forward on the safetensors: the
    /// Q/K permutation, biases, q/k norms and tied head all carried over. F16 weights are identical
    /// in both files, so only llama.cpp's F16 activation rounding separates them.
    /// </summary>
    [Theory]
    [InlineData("tiny", GgufType.F32, 1e-5)]
    [InlineData("tiny-qwen2", GgufType.F32, 1e-5)]
    [InlineData("tiny-qwen3", GgufType.F32, 1e-5)]
    [InlineData("tiny-mistral", GgufType.F32, 1e-5)]
    [InlineData("tiny", GgufType.F16, 1e-2)]
    public void GgufLogitsMatchHfReferenceForward(string preset, GgufType type, double tolerance)
    {
        using var dir = new TempDir();
        var gguf = dir.File("model.gguf");
        var dtype = type == GgufType.F32 ? Loom.Kernels.DType.F32 : Loom.Kernels.DType.F16;
        var m = ModelGenerator.Generate(preset, dir.Path, new GenerateOptions { Seed = 5, DType = dtype, GgufPath = gguf, GgufType = type });
        int[] tokens = [1, 72, 105, 200, 33, 250, 140, 7, 9, 131];
        double[][] expected;
        using (var w = ModelWeights.Open(dir.Path)) expected = HfReferenceForward.Logits(m.Config, w, tokens);

        var p = new ModelParams(gguf)
        {
            ContextSize = 64, GpuLayerCount = 0, FlashAttention = false, BatchSize = 64,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32,
        };
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Length; i++) batch.Add(tokens[i], i, (LLamaSeqId)0, true);
        Assert.Equal(DecodeResult.Ok, ctx.NativeHandle.Decode(batch));
        double worst = 0;
        for (int i = 0; i < tokens.Length; i++)
        {
            var logits = ctx.NativeHandle.GetLogitsIth(i);
            for (int t = 0; t < logits.Length; t++) worst = Math.Max(worst, Math.Abs(logits[t] - expected[i][t]));
        }
        Assert.True(worst < tolerance, $"{preset} {type}: max |llama.cpp - reference| = {worst}");
    }
}
