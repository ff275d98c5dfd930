using System.Diagnostics;
using System.Text.Json;
using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Isa;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Benchmarks;

/// <summary>
/// `kernels`: single-stream decode and 512-token prefill of smollm2-135m, Loom (bf16 safetensors)
/// against llama.cpp (F16 GGUF of the same weights) in the same run, plus this machine's
/// measured roofline so the figures can be read as fractions of it.
/// </summary>
public static class KernelsSuite
{
    public static int Run(BenchArgs args)
    {
        if (args.Get("quant") is not null) return QuantKernelsSuite.Run(args);
        int threads = args.GetInt("threads", Environment.ProcessorCount);
        int decodeSteps = args.GetInt("decode-steps", 64);
        int prefillLen = args.GetInt("prefill", 512);
        int reps = args.GetInt("reps", 3);
        string preset = args.Get("preset") ?? "smollm2-135m";
        string? cache = args.Get("cache");

        var (modelDir, gguf) = BenchModels.Ensure(preset, cache);
        using var backend = new CpuBackend(threads, BackendFactory.ForcedIsa(args.Get("isa")));
        LlamaCppVariant.Match(backend.Isa);
        Console.WriteLine($"Loom on {backend.Name}");

        Console.WriteLine($"roofline ({threads} threads) ...");
        double bandwidth = Roofline.MeasureReadBandwidthGBs(threads);
        double peak = Roofline.MeasureFmaPeakGflops(threads, backend.Isa);
        Console.WriteLine($"  read bandwidth {bandwidth:F1} GB/s, FP32 FMA peak at {CpuIsaSelector.Label(backend.Isa)} width {peak:F1} GFLOP/s");

        var rng = new Random(3);
        using var model = LlamaModel.Load(modelDir, backend);
        int vocab = model.Config.VocabSize;
        int[] prompt = Enumerable.Range(0, prefillLen).Select(_ => rng.Next(3, vocab)).ToArray();
        int[] shortPrompt = prompt[..16];

        // Loom and llama.cpp take turns, round by round, each keeping its best: on a shared machine a
        // burst of load then costs both sides alike instead of whichever ran during it.
        double loomPrefill = double.MaxValue, loomDecode = double.MaxValue;
        double peerPrefill = double.MaxValue, peerDecode = double.MaxValue;
        string variant;
        using (var runner = new DirectRunner(model, 1, prefillLen + decodeSteps + 16, kvDType: DType.BF16))
        using (var peer = new LlamaCppPeer(gguf, prefillLen + decodeSteps + 16, threads))
        {
            variant = LlamaCppVariant.Loaded();
            Console.WriteLine($"llama.cpp build: {variant}");
            runner.Step([new SequenceChunk(0, shortPrompt, 0)]); // warm-up: JIT, buffers, pool threads
            peer.Prefill(shortPrompt);
            for (int r = 0; r < reps; r++)
            {
                var sw = Stopwatch.StartNew();
                runner.Step([new SequenceChunk(0, prompt, 0)]);
                loomPrefill = Math.Min(loomPrefill, sw.Elapsed.TotalSeconds);
                peerPrefill = Math.Min(peerPrefill, peer.Prefill(prompt));

                var logits = runner.Step([new SequenceChunk(0, shortPrompt, 0)]);
                int next = ArgMax(logits), pos = shortPrompt.Length;
                sw.Restart();
                for (int s = 0; s < decodeSteps; s++)
                {
                    logits = runner.Step([new SequenceChunk(0, [next], pos++)]);
                    next = ArgMax(logits);
                }
                loomDecode = Math.Min(loomDecode, sw.Elapsed.TotalSeconds / decodeSteps);
                peerDecode = Math.Min(peerDecode, peer.DecodeSecondsPerToken(shortPrompt, decodeSteps));
            }
        }

        // Batched decode: 64 sequences with 128 tokens of context each advance one token per step.
        int batch = args.GetInt("batch", 64);
        double loomBatched = double.MaxValue;
        using (var runner = new DirectRunner(model, batch, 160, kvDType: DType.BF16))
        {
            runner.Step(Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, prompt[..128], 0)).ToList());
            for (int r = 0; r < reps; r++)
            {
                var sw = Stopwatch.StartNew();
                for (int step = 0; step < 8; step++)
                    runner.Step(Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, [prompt[step]], 128 + step)).ToList());
                loomBatched = Math.Min(loomBatched, sw.Elapsed.TotalSeconds / 8);
            }
        }
        double batchedTokS = batch / loomBatched;
        double batchedFlops = 2.0 * model.MatmulParameters * batchedTokS / 1e9 / peak;
        Console.WriteLine($"batched decode x{batch}: {batchedTokS:F0} tok/s, {loomBatched * 1000:F1} ms/step, {batchedFlops:P1} of FP32 FMA peak");

        double decodeTokS = 1 / loomDecode, prefillTokS = prefillLen / loomPrefill;
        double peerDecodeTokS = 1 / peerDecode, peerPrefillTokS = prefillLen / peerPrefill;
        // Decode reads every linear weight once per token; prefill does 2 FLOPs per weight per token.
        double decodeBw = model.LinearWeightBytes * decodeTokS / 1e9 / bandwidth;
        double prefillFlops = 2.0 * model.MatmulParameters * prefillTokS / 1e9 / peak;

        var result = new Dictionary<string, object>
        {
            ["preset"] = preset,
            ["threads"] = threads,
            ["isa"] = CpuIsaSelector.Name(backend.Isa),
            ["isa_reason"] = backend.IsaReason,
            ["llamacpp_build"] = variant,
            ["decode_tok_s"] = Math.Round(decodeTokS, 2),
            ["llamacpp_decode_tok_s"] = Math.Round(peerDecodeTokS, 2),
            ["decode_vs_llamacpp"] = Math.Round(decodeTokS / peerDecodeTokS, 3),
            ["prefill_tok_s"] = Math.Round(prefillTokS, 1),
            ["llamacpp_prefill_tok_s"] = Math.Round(peerPrefillTokS, 1),
            ["prefill_vs_llamacpp"] = Math.Round(prefillTokS / peerPrefillTokS, 3),
            ["decode_bw_fraction"] = Math.Round(decodeBw, 3),
            ["prefill_flops_fraction"] = Math.Round(prefillFlops, 3),
            ["read_bandwidth_gb_s"] = Math.Round(bandwidth, 1),
            ["fma_peak_gflop_s"] = Math.Round(peak, 1),
            ["linear_weight_bytes"] = model.LinearWeightBytes,
            ["batched_decode_tok_s"] = Math.Round(batchedTokS, 1),
            ["batched_decode_flops_fraction"] = Math.Round(batchedFlops, 3),
        };
        Console.WriteLine();
        Console.WriteLine($"{"",-10}{"Loom",14}{"llama.cpp",14}{"ratio",9}");
        Console.WriteLine($"{"decode",-10}{decodeTokS,10:F1} t/s{peerDecodeTokS,10:F1} t/s{decodeTokS / peerDecodeTokS,9:F2}");
        Console.WriteLine($"{"prefill",-10}{prefillTokS,10:F1} t/s{peerPrefillTokS,10:F1} t/s{prefillTokS / peerPrefillTokS,9:F2}");
        Console.WriteLine($"decode: {decodeBw:P1} of read bandwidth;  prefill: {prefillFlops:P1} of FP32 FMA peak");
        var json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        if (args.Get("json") is { } path)
        {
            File.WriteAllText(path, json);
            Console.WriteLine($"wrote {path}");
        }
        else Console.WriteLine(json);
        return 0;
    }

    private static int ArgMax(float[] x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
