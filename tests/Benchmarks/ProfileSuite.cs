using System.Diagnostics;
using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Benchmarks;

/// <summary>
/// `profile`: where one batched decode step goes, op by op, on the benchmark model
/// (`--batch 64 --context 128`). The figures guide kernel work; the ratios are what matter.
/// </summary>
public static class ProfileSuite
{
    public static int Run(BenchArgs args)
    {
        int threads = args.GetInt("threads", Environment.ProcessorCount);
        int batch = args.GetInt("batch", 64);
        int context = args.GetInt("context", 128);
        int steps = args.GetInt("steps", 8);
        string preset = args.Get("preset") ?? "smollm2-135m";
        var (modelDir, _) = BenchModels.Ensure(preset, args.Get("cache"), args.GetInt("vocab", 0));
        if (args.Get("quant") is { } quant) modelDir = BenchModels.EnsureQuant(preset, quant, args.Get("cache"));
        if (args.Get("model-file") is { } file) modelDir = file;

        var prof = new ProfilingBackend(new CpuBackend(threads, BackendFactory.ForcedIsa(args.Get("isa"))));
        using var model = LlamaModel.Load(modelDir, prof);
        var rng = new Random(3);
        int[] prompt = Enumerable.Range(0, context + steps + 1).Select(_ => rng.Next(3, model.Config.VocabSize)).ToArray();
        using var runner = new DirectRunner(model, batch, context + steps + 8, kvDType: args.Get("kv") == "f32" ? DType.F32 : DType.BF16);
        runner.Step(Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, prompt[..context], 0)).ToList());
        runner.Step(Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, [prompt[context]], context)).ToList());
        prof.Reset();
        var sw = Stopwatch.StartNew();
        float[] logits = [];
        for (int step = 1; step < steps; step++)
            logits = runner.Step(Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, [prompt[context + step]], context + step)).ToList());
        double total = sw.Elapsed.TotalSeconds;
        int n = steps - 1;
        double flops = 2.0 * model.MatmulParameters * batch * n;
        Console.WriteLine($"decode x{batch} at context {context}: {total / n * 1000:F2} ms/step, {batch * n / total:F0} tok/s, {flops / total / 1e9:F0} GFLOP/s in matmuls");
        double accounted = 0;
        foreach (var (op, (s, calls)) in prof.Times.OrderByDescending(kv => kv.Value.Seconds))
        {
            accounted += s;
            string rate = op.StartsWith("linear", StringComparison.Ordinal) ? $"{ParseFlops(op, batch) * calls / s / 1e9,7:F0} GFLOP/s" : "";
            Console.WriteLine($"  {op,-28} {s / n * 1000,8:F3} ms/step {s / total,6:P1} {rate}");
        }
        Console.WriteLine($"  {"(outside ops)",-28} {(total - accounted) / n * 1000,8:F3} ms/step {(total - accounted) / total,6:P1}");

        // Sampling the step's rows the way the engine does (one batch, the one algorithm): greedy
        // without logprobs, then seeded top-k/top-p, each as a share of a step that includes it.
        int vocab = model.Config.VocabSize;
        double Sampling(float t, int topK, float topP)
        {
            var batchS = new SamplingBatch();
            var sampler = new Loom.Kernels.Sampling.TokenSampler();
            var best = double.MaxValue;
            // 50 draws, best kept: the first ~30 calls run tier-0 JIT code (8 ms against 0.2 ms steady for
            // top-k + top-p over a 128K vocabulary), which the engine's sampler leaves after its first steps.
            for (int rep = 0; rep < 50; rep++)
            {
                batchS.Clear();
                for (int s = 0; s < batch; s++) batchS.AddSlot(s, t, topK, topP, 0f, (s * 0.37 + rep * 0.11) % 1, null);
                var w = Stopwatch.StartNew();
                sampler.Sample(logits, vocab, batchS);
                best = Math.Min(best, w.Elapsed.TotalSeconds);
            }
            return best;
        }
        double step1 = total / n, greedy = Sampling(0f, 0, 1f), topKP = Sampling(0.8f, 50, 0.9f);
        Console.WriteLine($"  sampling x{batch} over a {vocab}-token vocabulary: greedy {greedy * 1000:F3} ms/step ({greedy / (step1 + greedy):P1} of the step), " +
            $"top-k 50 + top-p 0.9 {topKP * 1000:F3} ms/step ({topKP / (step1 + topKP):P1})");
        return 0;
    }

    private static double ParseFlops(string op, int m)
    {
        var parts = op.Split(' ');
        int nn = int.Parse(parts[1][2..]), k = int.Parse(parts[2][2..]);
        return 2.0 * m * nn * k;
    }
}
