using System.Diagnostics;
using System.Text.Json;
using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Isa;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Benchmarks;

/// <summary>
/// `kernels --quant q4_k_m,q8_0`: for each GGUF type, the same quantized file served by Loom and by
/// llama.cpp (LLamaSharp) side by side in one run: single-stream decode, 512-token prefill and
/// batch-64 decode, plus Loom's own bf16 decode of the same weights (decode_vs_bf16) and the
/// load-time packing cost in seconds per GB of file.
/// </summary>
public static class QuantKernelsSuite
{
    public static int Run(BenchArgs args)
    {
        int threads = args.GetInt("threads", Environment.ProcessorCount);
        int decodeSteps = args.GetInt("decode-steps", 64);
        int prefillLen = args.GetInt("prefill", 512);
        int reps = args.GetInt("reps", 3);
        int batch = args.GetInt("batch", 64);
        string preset = args.Get("preset") ?? "smollm2-135m";
        string[] quants = args.Get("quant")!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var (modelDir, _) = BenchModels.Ensure(preset, args.Get("cache"));
        using var backend = new CpuBackend(threads, BackendFactory.ForcedIsa(args.Get("isa")));
        LlamaCppVariant.Match(backend.Isa);
        Console.WriteLine($"Loom on {backend.Name} (int8 dot: {CpuIsaSelector.Int8Dot(backend.Isa)}). The machine may be shared: every figure is the best of {reps} rounds in which " +
            "Loom, llama.cpp and Loom's bf16 take turns (with a pause so no side's spinning threads overlap the next), and only ratios from one run compare.");
        var rng = new Random(3);
        using var bf16 = LlamaModel.Load(modelDir, backend);
        int[] prompt = Enumerable.Range(0, prefillLen).Select(_ => rng.Next(3, bf16.Config.VocabSize)).ToArray();
        int[] shortPrompt = prompt[..16];
        using var bf16Runner = new DirectRunner(bf16, 1, prefillLen + decodeSteps + 16, kvDType: DType.BF16);
        bf16Runner.Step([new SequenceChunk(0, shortPrompt, 0)]);

        var results = new List<Dictionary<string, object>>();
        foreach (var q in quants)
        {
            var gguf = BenchModels.EnsureQuant(preset, q, args.Get("cache"));
            long fileBytes = new FileInfo(gguf).Length;
            var sw = Stopwatch.StartNew();
            using var model = LlamaModel.Load(gguf, backend);
            double load = sw.Elapsed.TotalSeconds;
            string mix = TypeMix(gguf);
            Console.WriteLine($"{q}: {fileBytes / 1e6:F0} MB file ({mix}), loaded and packed in {load:F2} s ({load / (fileBytes / 1e9):F2} s/GB)");

            using var runner = new DirectRunner(model, 1, prefillLen + decodeSteps + 16, kvDType: DType.BF16);
            using var peer = new LlamaCppPeer(gguf, prefillLen + decodeSteps + 16, threads);
            string variant = LlamaCppVariant.Loaded();
            runner.Step([new SequenceChunk(0, shortPrompt, 0)]);
            peer.Prefill(shortPrompt);
            double decode = double.MaxValue, peerDecode = double.MaxValue, bf16Decode = double.MaxValue;
            double prefill = double.MaxValue, peerPrefill = double.MaxValue;
            for (int r = 0; r < reps; r++)
            {
                decode = Math.Min(decode, DecodeOnce(runner, shortPrompt, decodeSteps));
                Pause();
                peerDecode = Math.Min(peerDecode, peer.DecodeSecondsPerToken(shortPrompt, decodeSteps));
                Pause();
                bf16Decode = Math.Min(bf16Decode, DecodeOnce(bf16Runner, shortPrompt, decodeSteps));
                Pause();
                prefill = Math.Min(prefill, PrefillOnce(runner, prompt));
                Pause();
                peerPrefill = Math.Min(peerPrefill, peer.Prefill(prompt));
                Pause();
            }

            double batched = MeasureBatched(model, prompt, batch, reps);
            var row = new Dictionary<string, object>
            {
                ["quant"] = q,
                ["tensor_types"] = mix,
                ["isa"] = CpuIsaSelector.Name(backend.Isa),
                ["int8_dot"] = CpuIsaSelector.Int8Dot(backend.Isa),
                ["llamacpp_build"] = variant,
                ["decode_tok_s"] = Math.Round(1 / decode, 2),
                ["llamacpp_decode_tok_s"] = Math.Round(1 / peerDecode, 2),
                ["decode_vs_llamacpp"] = Math.Round(peerDecode / decode, 3),
                ["prefill_tok_s"] = Math.Round(prefillLen / prefill, 1),
                ["llamacpp_prefill_tok_s"] = Math.Round(prefillLen / peerPrefill, 1),
                ["prefill_vs_llamacpp"] = Math.Round(peerPrefill / prefill, 3),
                ["bf16_decode_tok_s"] = Math.Round(1 / bf16Decode, 2),
                ["decode_vs_bf16"] = Math.Round(bf16Decode / decode, 3),
                ["batched_decode_tok_s"] = Math.Round(batch / batched, 1),
                ["linear_weight_bytes"] = model.LinearWeightBytes,
                ["file_bytes"] = fileBytes,
                ["load_s_per_gb"] = Math.Round(load / (fileBytes / 1e9), 3),
            };
            results.Add(row);
            Console.WriteLine($"  decode {1 / decode,8:F1} t/s vs llama.cpp {1 / peerDecode,8:F1} t/s ({peerDecode / decode:F2}x); " +
                $"prefill {prefillLen / prefill,8:F1} t/s vs {prefillLen / peerPrefill,8:F1} t/s ({peerPrefill / prefill:F2}x); " +
                $"bf16 decode {1 / bf16Decode:F1} t/s ({bf16Decode / decode:F2}x); batched x{batch} {batch / batched:F0} t/s");
        }

        var result = new Dictionary<string, object>
        {
            ["preset"] = preset,
            ["threads"] = threads,
            ["isa"] = CpuIsaSelector.Name(backend.Isa),
            ["isa_reason"] = backend.IsaReason,
            ["quant"] = results,
        };
        var json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        if (args.Get("json") is { } path)
        {
            File.WriteAllText(path, json);
            Console.WriteLine($"wrote {path}");
        }
        else Console.WriteLine(json);
        return 0;
    }

    /// <summary>"Q4_K x84, Q6_K x31, ..." over the file's 2-D tensors.</summary>
    private static string TypeMix(string gguf)
    {
        using var f = GgufFile.Open(gguf);
        return string.Join(", ", f.Tensors.Values.Where(t => t.Dims.Length == 2).GroupBy(t => GgufTypes.Name(t.TypeId))
            .OrderByDescending(g => g.Count()).Select(g => $"{g.Key} x{g.Count()}"));
    }

    private static void Pause() => Thread.Sleep(150);

    /// <summary>Seconds per token of greedy single-stream decode after a 16-token prompt.</summary>
    internal static double DecodeOnce(DirectRunner runner, int[] shortPrompt, int steps)
    {
        var logits = runner.Step([new SequenceChunk(0, shortPrompt, 0)]);
        int next = ArgMax(logits), pos = shortPrompt.Length;
        var sw = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++)
        {
            logits = runner.Step([new SequenceChunk(0, [next], pos++)]);
            next = ArgMax(logits);
        }

        return sw.Elapsed.TotalSeconds / steps;
    }

    internal static double PrefillOnce(DirectRunner runner, int[] prompt)
    {
        var sw = Stopwatch.StartNew();
        runner.Step([new SequenceChunk(0, prompt, 0)]);
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Seconds per step of <paramref name="batch"/> sequences with 128 tokens of context advancing one token each.</summary>
    internal static double MeasureBatched(LlamaModel model, int[] prompt, int batch, int reps)
    {
        double best = double.MaxValue;
        using var runner = new DirectRunner(model, batch, 160, kvDType: DType.BF16);
        runner.Step(Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, prompt[..128], 0)).ToList());
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            for (int step = 0; step < 8; step++)
                runner.Step(Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, [prompt[step]], 128 + step)).ToList());
            best = Math.Min(best, sw.Elapsed.TotalSeconds / 8);
        }

        return best;
    }

    private static int ArgMax(float[] x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
