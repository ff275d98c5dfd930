using System.Diagnostics;
using System.Text.Json;
using Loom.Grains.Abstractions;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Isa;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Models;

namespace Loom.Benchmarks;

/// <summary>
/// `engine`: the in-process engine (no HTTP) on smollm2-135m bf16 under a ShareGPT-like workload
/// at several client concurrencies. `--compare` adds static, sequential and contiguous-KV runs on
/// the same model and workload; `--peer llamasharp` adds llama.cpp's batched decoding.
/// </summary>
public static class EngineSuite
{
    private sealed record Row(string Name, RunMetrics M, double KvWaste);

    public static int Run(BenchArgs args)
    {
        int threads = args.GetInt("threads", Environment.ProcessorCount);
        int requests = args.GetInt("requests", 256);
        int[] levels = (args.Get("concurrency") ?? "1,16,64").Split(',').Select(int.Parse).ToArray();
        int top = levels.Max();
        long kvBytes = (long)args.GetInt("kv-mib", 512) * 1024 * 1024;
        int maxModelLen = args.GetInt("max-model-len", 2048);
        int budget = args.GetInt("max-num-batched-tokens", 512);
        var (modelDir, gguf) = BenchModels.Ensure(args.Get("preset") ?? "smollm2-135m", args.Get("cache"));
        // --model-file F (a .gguf) or --quant TYPE: Loom and llama.cpp both serve that one file.
        if (args.Get("quant") is { } quant) modelDir = gguf = BenchModels.EnsureQuant(args.Get("preset") ?? "smollm2-135m", quant, args.Get("cache"));
        if (args.Get("model-file") is { } file) modelDir = gguf = file;

        using var backend = new CpuBackend(threads, Loom.Kernels.BackendFactory.ForcedIsa(args.Get("isa")));
        LlamaCppVariant.Match(backend.Isa);
        Console.WriteLine($"Loom on {backend.Name}");
        using var model = LlamaModel.Load(modelDir, backend);
        var work = Workload.ShareGptLike(requests, model.Config.VocabSize);
        Console.WriteLine($"workload: {requests} requests, prompt mean {work.Average(w => w.Prompt.Length):F0} (max {work.Max(w => w.Prompt.Length)}), " +
            $"output mean {work.Average(w => w.OutputTokens):F0} (max {work.Max(w => w.OutputTokens)}) tokens; KV budget {kvBytes >> 20} MiB, max_model_len {maxModelLen}");

        var options = new EngineOptions { KvCacheBytes = kvBytes, MaxModelLen = maxModelLen, MaxNumBatchedTokens = budget, MaxNumSeqs = top };
        var rows = new List<Row>();
        foreach (int c in levels) rows.Add(RunLoom($"continuous@{c}", model, options, work, c));
        Row? stat = null, seq = null, contiguous = null, peer = null;
        if (args.Has("compare"))
        {
            stat = RunLoom($"static@{top}", model, options, work, top, admission: new Baselines.StaticAdmission(top));
            contiguous = RunLoom($"contiguous@{top}", model, options, work, top,
                createKv: (blocks, maxLen) => new Baselines.ContiguousKvCacheManager(blocks, options.BlockSize, maxLen));
            rows.AddRange([stat, contiguous]);
            if (levels.Contains(1) && !args.Has("sequential-run"))
            {
                // One client that waits for each answer gives the engine one request at a time: that
                // is the sequential policy's schedule, so the concurrency-1 run is reused, not repeated.
                var one = rows.First(r => r.Name == "continuous@1");
                seq = one with { Name = "sequential(=@1)" };
                Console.WriteLine("sequential: the continuous@1 run (one request at a time)");
            }
            else if (!args.Has("no-sequential"))
            {
                seq = RunLoom("sequential", model, options, work, top, admission: new Baselines.SequentialAdmission());
                rows.Add(seq);
            }
        }
        if (args.Get("peer") == "llamasharp")
        {
            Console.WriteLine($"llama.cpp batched @{top} ...");
            peer = new Row($"llama.cpp@{top}", LlamaCppBatchedPeer.Run(gguf, work, top, threads, budget), double.NaN);
            rows.Add(peer);
        }

        PrintTable(rows);
        var cont = rows.First(r => r.Name == $"continuous@{top}");
        var result = new Dictionary<string, object?>
        {
            ["requests"] = requests,
            ["isa"] = CpuIsaSelector.Name(backend.Isa),
            ["int8_dot"] = modelDir == gguf ? CpuIsaSelector.Int8Dot(backend.Isa) : null,
            ["model_file"] = modelDir,
            ["llamacpp_build"] = peer is null ? null : LlamaCppVariant.Loaded(),
            ["continuous_tok_s"] = Math.Round(cont.M.OutputTokS, 1),
            ["continuous_vs_sequential"] = seq is null ? null : Math.Round(cont.M.OutputTokS / seq.M.OutputTokS, 2),
            ["continuous_vs_static"] = stat is null ? null : Math.Round(cont.M.OutputTokS / stat.M.OutputTokS, 2),
            ["paged_vs_contiguous_max_concurrency"] = contiguous is null ? null : Math.Round((double)cont.M.PeakConcurrency / contiguous.M.PeakConcurrency, 2),
            ["kv_waste_fraction"] = Math.Round(cont.KvWaste, 4),
            ["vs_llamacpp_at_64"] = peer is null ? null : Math.Round(cont.M.OutputTokS / peer.M.OutputTokS, 2),
            ["runs"] = rows.Select(r => new Dictionary<string, object>
            {
                ["name"] = r.Name, ["output_tok_s"] = Math.Round(r.M.OutputTokS, 1), ["req_s"] = Math.Round(r.M.RequestS, 3),
                ["ttft_p50_ms"] = Math.Round(r.M.TtftMs(0.5), 1), ["ttft_p99_ms"] = Math.Round(r.M.TtftMs(0.99), 1),
                ["itl_p50_ms"] = Math.Round(r.M.ItlMs(0.5), 2), ["itl_p99_ms"] = Math.Round(r.M.ItlMs(0.99), 2),
                ["peak_concurrency"] = r.M.PeakConcurrency, ["kv_waste_fraction"] = double.IsNaN(r.KvWaste) ? -1 : Math.Round(r.KvWaste, 4),
            }).ToList(),
        };
        foreach (var (k, v) in result) if (k != "runs" && v is not null) Console.WriteLine($"{k} = {v}");
        if (args.Get("json") is { } json) File.WriteAllText(json, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        if (args.Get("plot") is { } png) EnginePlot.Write(png, rows.Select(r => (r.Name, r.M.OutputTokS, r.M.TtftMs(0.5), r.M.ItlMs(0.5))).ToList());
        return 0;
    }

    private static Row RunLoom(string name, LlamaModel model, EngineOptions options, List<WorkItem> work, int concurrency,
        IAdmissionPolicy? admission = null, Func<int, int, IKvCacheManager>? createKv = null)
    {
        var (metrics, waste) = RunEngine(name, model, options, work, concurrency, admission: admission, createKv: createKv);
        return new Row(name, metrics, waste);
    }

    /// <summary>The workload on an in-process engine with <paramref name="concurrency"/> closed-loop clients (or Poisson arrivals at <paramref name="rate"/> req/s).</summary>
    internal static (RunMetrics Metrics, double KvWaste) RunEngine(string name, LlamaModel model, EngineOptions options, List<WorkItem> work, int concurrency,
        double? rate = null, IAdmissionPolicy? admission = null, Func<int, int, IKvCacheManager>? createKv = null)
    {
        Console.WriteLine($"{name} ...");
        using var engine = new EngineLoop(model, options, admission: admission, createKv: createKv);
        var metrics = new RunMetrics(work.Count);
        var clock = Stopwatch.StartNew();
        int next = -1;
        async Task Client()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < work.Count)
            {
                var w = work[i];
                metrics.Submitted(i, clock.Elapsed.TotalSeconds);
                var request = new GenerationRequest($"b{i}", w.Prompt, new SamplingParams { Temperature = 0, MaxTokens = w.OutputTokens, IgnoreEos = true });
                await foreach (var d in engine.Submit(request)) metrics.Token(i, clock.Elapsed.TotalSeconds);
            }
        }
        async Task One(int i)
        {
            var w = work[i];
            metrics.Submitted(i, clock.Elapsed.TotalSeconds);
            var request = new GenerationRequest($"b{i}", w.Prompt, new SamplingParams { Temperature = 0, MaxTokens = w.OutputTokens, IgnoreEos = true });
            await foreach (var d in engine.Submit(request)) metrics.Token(i, clock.Elapsed.TotalSeconds);
        }
        if (rate is { } r) Task.WaitAll(Arrivals.Poisson(work.Count, r).Select(async (at, i) => { await Arrivals.Until(clock, at); await One(i); }).ToArray());
        else Task.WaitAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Client)).ToArray());
        metrics.Complete(clock.Elapsed.TotalSeconds, engine.PeakRunning);
        var (steps, tokens, exec) = engine.StepTotals;
        Console.WriteLine($"  {steps} steps, {tokens / (double)Math.Max(steps, 1):F1} tokens/step, forward+sampling {exec:F1} s ({tokens / Math.Max(exec, 1e-9):F0} tok/s), preemptions {engine.Preemptions}");
        return (metrics, engine.KvWasteFraction);
    }

    private static void PrintTable(List<Row> rows)
    {
        Console.WriteLine();
        Console.WriteLine($"{"run",-18}{"tok/s",9}{"req/s",8}{"TTFT p50",10}{"p99",9}{"ITL p50",9}{"p99",8}{"peak seqs",10}{"KV waste",9}");
        foreach (var r in rows)
            Console.WriteLine($"{r.Name,-18}{r.M.OutputTokS,9:F1}{r.M.RequestS,8:F2}{r.M.TtftMs(0.5),8:F0}ms{r.M.TtftMs(0.99),7:F0}ms{r.M.ItlMs(0.5),7:F1}ms{r.M.ItlMs(0.99),6:F0}ms{r.M.PeakConcurrency,10}{(double.IsNaN(r.KvWaste) ? "-" : r.KvWaste.ToString("P1")),9}");
        Console.WriteLine();
    }
}
