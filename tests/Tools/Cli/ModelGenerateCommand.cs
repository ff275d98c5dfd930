using System.CommandLine;
using Loom.Kernels;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Tools.Cli;

/// <summary>`model generate PRESET --out DIR [--dtype bf16] [--seed N] [--gguf FILE --gguf-type f16|q8_0|q4_0|q4_k_m|...]`.</summary>
internal static class ModelGenerateCommand
{
    public static Command Create()
    {
        var preset = new Argument<string>("preset") { Description = $"one of: {string.Join(", ", ModelPresets.Names)}" };
        var output = new Option<string>("--out", "-o") { Description = "folder to write the Hugging Face model into", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "weight dtype: f32, f16 or bf16", DefaultValueFactory = _ => "bf16" };
        var seed = new Option<ulong>("--seed") { Description = "random seed (same seed, same bytes)", DefaultValueFactory = _ => 0 };
        var gguf = new Option<string?>("--gguf") { Description = "also write the same weights as a GGUF file for llama.cpp" };
        var ggufType = new Option<string>("--gguf-type") { Description = "GGUF weight type: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k or q4_k_m (llama.cpp's Q4_K/Q6_K mix)", DefaultValueFactory = _ => "f16" };
        var cmd = new Command("generate", "Write a random-weight model in the exact Hugging Face layout") { preset, output, dtype, seed, gguf, ggufType };
        cmd.SetAction(r =>
        {
            try
            {
                var p = ModelPresets.Get(r.GetValue(preset)!);
                var options = new GenerateOptions
                {
                    DType = ParseDType(r.GetValue(dtype)!),
                    Seed = r.GetValue(seed),
                    GgufPath = r.GetValue(gguf),
                    GgufType = GgufTypes.Parse(r.GetValue(ggufType)!),
                };
                var dir = r.GetValue(output)!;
                ModelGenerator.Generate(p, dir, options);
                Console.WriteLine($"wrote {p.Name} ({options.DType}) to {dir}" + (options.GgufPath is null ? "" : $" and {options.GgufPath}"));
                return 0;
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return cmd;
    }

    public static DType ParseDType(string s) => s.ToLowerInvariant() switch
    {
        "f32" or "float32" => DType.F32,
        "f16" or "float16" => DType.F16,
        "bf16" or "bfloat16" => DType.BF16,
        _ => throw new ArgumentException($"--dtype must be f32, f16 or bf16, not '{s}'"),
    };
}
