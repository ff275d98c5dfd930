using Loom.Kernels;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Benchmarks;

/// <summary>The benchmark model: a preset in bf16 safetensors for Loom and the same weights as an F16 GGUF for llama.cpp.</summary>
public static class BenchModels
{
    /// <param name="vocab">Overrides the preset's vocabulary (e.g. Qwen's 151,936 on a small model); 0 keeps it.</param>
    public static (string ModelDir, string Gguf) Ensure(string preset, string? cache, int vocab = 0)
    {
        cache ??= Path.Combine(Path.GetTempPath(), "loom-bench");
        string name = vocab > 0 ? $"{preset}-v{vocab}" : preset;
        var modelDir = Path.Combine(cache, $"{name}-bf16");
        var gguf = Path.Combine(cache, $"{name}-f16.gguf");
        if (!File.Exists(Path.Combine(modelDir, "config.json")) || !File.Exists(gguf))
        {
            Console.WriteLine($"generating {preset} (bf16 safetensors + F16 GGUF) in {cache} ...");
            var p = ModelPresets.Get(preset);
            ModelGenerator.Generate(vocab > 0 ? p with { Vocab = vocab } : p, modelDir,
                new GenerateOptions { DType = DType.BF16, Seed = 42, GgufPath = gguf, GgufType = GgufType.F16 });
        }
        return (modelDir, gguf);
    }

    /// <summary>The preset's bf16 weights quantized to a GGUF of <paramref name="quant"/> (q8_0, q4_0, q4_k_m, ...), written once.</summary>
    public static string EnsureQuant(string preset, string quant, string? cache)
    {
        cache ??= Path.Combine(Path.GetTempPath(), "loom-bench");
        var (modelDir, _) = Ensure(preset, cache);
        // The suffix names the writer's tensor-type rules, so a file cached under older ones (Q4_0 where
        // llama.cpp writes Q5_0) is not measured as if it were today's.
        var gguf = Path.Combine(cache, $"{preset}-{quant.ToLowerInvariant()}.w2.gguf");
        if (!File.Exists(gguf))
        {
            Console.WriteLine($"writing {gguf} ...");
            using var w = ModelWeights.Open(modelDir);
            GgufModelWriter.Write(ModelConfig.Load(modelDir), w, gguf, GgufTypes.Parse(quant), preset);
        }

        return gguf;
    }
}
