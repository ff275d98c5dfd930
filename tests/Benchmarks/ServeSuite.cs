using Loom.Testing;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Loom.Gateway.Hosting;
using Loom.Kernels.Cpu;
using Loom.Silo.Configuration;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Models;
using Microsoft.AspNetCore.Builder;

namespace Loom.Benchmarks;

/// <summary>
/// `serve`: measures a running gateway the way vLLM's benchmark_serving does (streamed
/// /v1/completions, token-id prompts from the engine suite's ShareGPT-like mix; output tok/s,
/// req/s, TTFT, TPOT, ITL and E2E at p50/p99). With `--url` it measures that server. Without it
/// it runs the same workload twice on this machine, one after the other: straight into an
/// in-process engine, then through `loom serve`'s own host (Kestrel, embedded silo, Orleans
/// streaming, detokenization, SSE) on the same model, and reports what the gateway costs.
/// </summary>
public static class ServeSuite
{
    public static int Run(BenchArgs args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(BenchArgs args)
    {
        int requests = args.GetInt("requests", 128), concurrency = args.GetInt("concurrency", 32);
        double? rate = args.Get("rate") is { } r ? double.Parse(r, System.Globalization.CultureInfo.InvariantCulture) : null;
        string preset = args.Get("preset") ?? "smollm2-135m";
        string? url = args.Get("url");
        int vocab = args.GetInt("vocab", 0);
        RunMetrics? engine = null;
        WebApplication? app = null;
        string modelName = args.Get("model") ?? "";
        try
        {
            if (url is null)
            {
                var (modelDir, _) = BenchModels.Ensure(preset, args.Get("cache"));
                var config = ModelConfig.Load(modelDir);
                // The random-weight model has no tokenizer of its own: GPT-2's real one (50257 ids, a
                // superset of the 49152 the model emits) turns its tokens into text, so the gateway
                // streams, detokenizes and frames real text as it would for a real model.
                if (!File.Exists(Path.Combine(modelDir, "tokenizer.json")) && config.VocabSize <= 50257)
                    Loom.Gateway.Tokenization.Gpt2TokenizerFiles.Write(modelDir);
                vocab = config.VocabSize;
                // The model gets all cores but one in both runs: on a GPU server the gateway's CPU work
                // (HTTP, Orleans, detokenizing) never competes with the model, so here it gets a core
                // of its own too, and the comparison isolates what the serving path costs.
                int threads = args.GetInt("threads", Math.Max(1, Environment.ProcessorCount - 1));
                var engineSection = new EngineOptions { MaxNumSeqs = Math.Max(concurrency, 64), MaxModelLen = 2048, KvCacheBytes = 512L << 20, Threads = threads };
                Console.WriteLine($"model threads: {threads} of {Environment.ProcessorCount} (the rest serve HTTP)");
                var work0 = Workload.ShareGptLike(requests, vocab);
                using (var backend = new CpuBackend(engineSection.Threads))
                using (var model = LlamaModel.Load(modelDir, backend))
                {
                    // The same settings the served worker binds, so the two runs differ only in the serving path.
                    engine = EngineSuite.RunEngine("engine (in-process)", model, engineSection, work0, concurrency, rate).Metrics;
                }

                int port = TestHost.FreePort();
                modelName = preset;
                app = LoomGatewayHosting.BuildWeb([], new LoomOptions
                {
                    Model = new() { Path = modelDir, Name = preset },
                    Engine = engineSection,
                    Cluster = new() { SiloPort = TestHost.FreePort(), GatewayPort = TestHost.FreePort(), ClusterId = "bench-" + Guid.NewGuid().ToString("N")[..6] },
                    Gateway = new() { Host = "127.0.0.1", HttpPort = port, GrpcPort = 0 },
                });
                await app.StartAsync();
                url = $"http://127.0.0.1:{port}";
            }

            using var http = new HttpClient { BaseAddress = new Uri(url.TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(10) };
            if (args.Get("api-key") is { } key) http.DefaultRequestHeaders.Authorization = new("Bearer", key);
            if (modelName.Length == 0)
            {
                using var models = JsonDocument.Parse(await http.GetStringAsync("v1/models"));
                modelName = models.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;
            }
            if (vocab == 0)
            {
                using var models = JsonDocument.Parse(await http.GetStringAsync("v1/models"));
                vocab = models.RootElement.GetProperty("data")[0].TryGetProperty("vocab_size", out var v) ? v.GetInt32() : 32000;
            }
            var work = Workload.ShareGptLike(requests, vocab);
            await WarmUpAsync(http, modelName);
            Console.WriteLine($"gateway {url} ...");
            var gw = await RunHttpAsync(http, modelName, work, concurrency, rate);

            Console.WriteLine();
            Console.WriteLine($"{"run",-22}{"tok/s",9}{"req/s",8}{"TTFT p50",10}{"p99",9}{"TPOT p50",10}{"ITL p50",9}{"p99",8}{"E2E p50",10}{"p99",9}");
            if (engine is not null) Print("engine (in-process)", engine);
            Print("gateway (HTTP)", gw);
            var result = new Dictionary<string, object?>
            {
                ["url"] = url,
                ["requests"] = requests,
                ["concurrency"] = rate is null ? concurrency : null,
                ["rate"] = rate,
                ["output_tok_s"] = Math.Round(gw.OutputTokS, 1),
                ["req_s"] = Math.Round(gw.RequestS, 3),
                ["ttft_p50_ms"] = Math.Round(gw.TtftMs(0.5), 1),
                ["ttft_p99_ms"] = Math.Round(gw.TtftMs(0.99), 1),
                ["tpot_p50_ms"] = Math.Round(gw.TpotMs(0.5), 2),
                ["itl_p50_ms"] = Math.Round(gw.ItlMs(0.5), 2),
                ["itl_p99_ms"] = Math.Round(gw.ItlMs(0.99), 2),
                ["e2e_p50_ms"] = Math.Round(gw.E2eMs(0.5), 1),
                ["e2e_p99_ms"] = Math.Round(gw.E2eMs(0.99), 1),
                ["engine_tok_s"] = engine is null ? null : Math.Round(engine.OutputTokS, 1),
                ["overhead_vs_engine"] = engine is null ? null : Math.Round(1 - gw.OutputTokS / engine.OutputTokS, 4),
                ["ttft_p50_added_ms"] = engine is null ? null : Math.Round(gw.TtftMs(0.5) - engine.TtftMs(0.5), 2),
            };
            foreach (var k in result.Keys.ToList()) if (result[k] is double d && !double.IsFinite(d)) result[k] = null; // JSON has no NaN
            foreach (var (k, v) in result) if (v is not null) Console.WriteLine($"{k} = {v}");
            if (args.Get("json") is { } json) await File.WriteAllTextAsync(json, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        finally
        {
            if (app is not null)
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }
    }

    private static void Print(string name, RunMetrics m) =>
        Console.WriteLine($"{name,-22}{m.OutputTokS,9:F1}{m.RequestS,8:F2}{m.TtftMs(0.5),8:F0}ms{m.TtftMs(0.99),7:F0}ms{m.TpotMs(0.5),8:F1}ms{m.ItlMs(0.5),7:F1}ms{m.ItlMs(0.99),6:F0}ms{m.E2eMs(0.5),8:F0}ms{m.E2eMs(0.99),7:F0}ms");

    private static async Task WarmUpAsync(HttpClient http, string model)
    {
        using var r = await http.PostAsJsonAsync("v1/completions", new { model, prompt = new[] { 1, 2, 3 }, max_tokens = 2 });
        r.EnsureSuccessStatusCode();
    }

    private static async Task<RunMetrics> RunHttpAsync(HttpClient http, string model, List<WorkItem> work, int concurrency, double? rate)
    {
        var metrics = new RunMetrics(work.Count);
        var clock = Stopwatch.StartNew();
        int next = -1, inFlight = 0, peak = 0;
        async Task One(int i)
        {
            var w = work[i];
            int now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref peak, now);
            metrics.Submitted(i, clock.Elapsed.TotalSeconds);
            var body = JsonSerializer.Serialize(new
            {
                model, prompt = w.Prompt, max_tokens = w.OutputTokens, temperature = 0, ignore_eos = true, stream = true,
                stream_options = new { include_usage = true },
            });
            using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
            resp.EnsureSuccessStatusCode();
            using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
            int tokens = 0;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                var data = line.AsSpan(6);
                if (data.SequenceEqual("[DONE]")) break;
                using var chunk = JsonDocument.Parse(line[6..]);
                var root = chunk.RootElement;
                if (root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) tokens = u.GetProperty("completion_tokens").GetInt32();
                if (root.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
                    && choices[0].GetProperty("text").GetString() is { Length: > 0 })
                    metrics.Token(i, clock.Elapsed.TotalSeconds);
            }
            metrics.Finished(i, clock.Elapsed.TotalSeconds);
            metrics.SetTokens(i, tokens);
            Interlocked.Decrement(ref inFlight);
        }
        if (rate is { } r)
            await Task.WhenAll(Arrivals.Poisson(work.Count, r).Select(async (at, i) => { await Arrivals.Until(clock, at); await One(i); }));
        else
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < work.Count) await One(i);
            })));
        metrics.Complete(clock.Elapsed.TotalSeconds, peak);
        return metrics;
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int cur;
        while (value > (cur = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, cur) != cur) { }
    }

}
