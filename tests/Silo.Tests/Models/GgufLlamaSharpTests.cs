using LLama;
using LLama.Common;
using LLama.Native;
using Loom.Silo.Models;

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
}
