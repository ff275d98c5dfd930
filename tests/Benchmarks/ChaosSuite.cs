using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Loom.Gateway.Serving;
using Loom.Gateway.OpenAi;
using Loom.Grains.Abstractions;
using Loom.Silo.Configuration;
using Loom.Silo.Hosting;
using Loom.Silo.Worker;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;

namespace Loom.Benchmarks;

/// <summary>
/// `chaos`: three in-process simulated silos behind the real HTTP gateway, driven open-loop above
/// capacity for --minutes while clients disconnect at random, steps fail at random
/// (simulated.step_fault_rate), a poison request arrives every minute and one silo is killed and
/// later replaced. Every request must end with an answer: a completion, or an OpenAI error body.
/// Reports requests, completed, failed_clear, hung (must be 0), leaked_kv_blocks after the drain
/// (must be 0), rss_growth_fraction and the p99 TTFT of undisturbed requests.
/// </summary>
public static class ChaosSuite
{
    private const int PoisonToken = 200;

    public static int Run(BenchArgs args)
    {
        double minutes = double.Parse(args.Get("minutes") ?? "5", System.Globalization.CultureInfo.InvariantCulture);
        double rate = double.Parse(args.Get("rate") ?? "50", System.Globalization.CultureInfo.InvariantCulture);
        return RunAsync(TimeSpan.FromMinutes(minutes), rate, args.Get("json")).GetAwaiter().GetResult();
    }

    private sealed class Tally
    {
        public int Requests, Completed, FailedClear, Unclear, Hung, Disconnected, Poison, PoisonRefused;
        public readonly Dictionary<int, int> ByStatus = new();
        public readonly List<double> Ttft = [];
    }

    private static async Task<int> RunAsync(TimeSpan duration, double rate, string? json)
    {
        var options = new LoomOptions
        {
            Engine = new() { Backend = "simulated", MaxNumSeqs = 8, MaxWaiting = 16, KvCacheBytes = 8L * 1024 * 1024 },
            Simulated = new() { StepOverheadMs = 20, PerTokenMs = 0.02, VocabSize = 256, StepFaultRate = 0.002, PoisonTokenId = PoisonToken },
        };
        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddLoomWorker(options);
            silo.Services.AddLogging(l => l.SetMinimumLevel(LogLevel.Critical));
        });
        builder.ConfigureClient(c =>
        {
            c.ConfigureFailureDetection();
            c.Services.AddLogging(l => l.SetMinimumLevel(LogLevel.Critical));
        });
        await using var cluster = builder.Build();
        await cluster.DeployAsync();
        var router = cluster.Client.GetGrain<IRouterGrain>(0);
        for (int i = 0; i < 400 && (await router.GetWorkerStatsAsync()).Count < 3; i++) await Task.Delay(50);

        using var client = new OrleansGenerationClient(cluster.Client, firstTokenTimeout: TimeSpan.FromSeconds(15));
        await using var web = await StartGatewayAsync(client);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = web.Uri, Timeout = Timeout.InfiniteTimeSpan };

        Console.WriteLine($"chaos: {duration.TotalMinutes:F1} min, open-loop {rate:F0} req/s against 3 simulated workers (8 seqs, 20 ms steps, queue 16),");
        Console.WriteLine("       step faults p=0.002, a poison request a minute, 30% of clients disconnect, one silo killed at 1/3 and replaced at 2/3");
        // Warm up the gateway and workers before the RSS baseline.
        for (int i = 0; i < 20; i++) await OneAsync(http, Prompt(new Random(i), false), stream: i % 2 == 0, disconnectAfter: null, new Tally(), TimeSpan.FromSeconds(30), false);
        // The RSS baseline is taken once the load has run for a while (heaps, pools and caches sized
        // for it), so the growth measures what the faults leave behind, not the warm-up.
        long rssStart = 0, heapStart = 0;
        int threadsStart = 0;
        var baselineAt = TimeSpan.FromSeconds(Math.Min(30, duration.TotalSeconds / 6));

        var tally = new Tally();
        var rng = new Random(42);
        var running = new List<Task>();
        var sw = Stopwatch.StartNew();
        bool killed = false, replaced = false;
        long rssReplaced = 0;
        double nextArrival = 0, nextPoison = 30;
        var deadline = TimeSpan.FromSeconds(60);
        while (sw.Elapsed < duration)
        {
            double now = sw.Elapsed.TotalSeconds;
            if (rssStart == 0 && sw.Elapsed >= baselineAt)
            {
                rssStart = Rss(compact: true);
                heapStart = GC.GetTotalMemory(forceFullCollection: false);
                threadsStart = Process.GetCurrentProcess().Threads.Count;
            }
            if (!killed && now >= duration.TotalSeconds / 3)
            {
                killed = true;
                var victim = cluster.Silos.Last(s => s.IsActive);
                Console.WriteLine($"  t={now:F0}s kill -9 {victim.SiloAddress}");
                await cluster.KillSiloAsync(victim);
            }
            if (!replaced && now >= 2 * duration.TotalSeconds / 3)
            {
                replaced = true;
                Console.WriteLine($"  t={now:F0}s starting a replacement silo");
                running.Add(cluster.StartAdditionalSiloAsync());
            }
            // Once the replacement has run a while: what it cost to start, apart from what the run leaves behind.
            if (replaced && rssReplaced == 0 && now >= 2 * duration.TotalSeconds / 3 + Math.Min(20, duration.TotalSeconds / 15))
                rssReplaced = Rss(compact: true);
            bool poison = now >= nextPoison;
            if (poison) nextPoison += 60;
            if (now >= nextArrival || poison)
            {
                bool stream = rng.NextDouble() < 0.7;
                TimeSpan? disconnect = !poison && rng.NextDouble() < 0.3 ? TimeSpan.FromMilliseconds(rng.Next(10, 1500)) : null;
                var prompt = Prompt(rng, poison);
                lock (tally) tally.Requests++;
                running.Add(OneAsync(http, prompt, stream, disconnect, tally, deadline, poison));
                // Poisson arrivals.
                if (!poison) nextArrival += -Math.Log(1 - rng.NextDouble()) / rate;
            }
            else
            {
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(0.05, Math.Max(0.001, nextArrival - now))));
            }
            running.RemoveAll(t => t.IsCompleted);
        }

        Console.WriteLine($"  t={sw.Elapsed.TotalSeconds:F0}s load stops; draining {running.Count} open requests");
        await Task.WhenAll(running);
        // Drain: every live worker must come back to an empty pool.
        int leaked = int.MaxValue;
        for (int i = 0; i < 100 && leaked != 0; i++)
        {
            leaked = 0;
            foreach (var silo in cluster.Silos.Where(s => s.IsActive))
            {
                var w = silo.ServiceProvider.GetRequiredService<WorkerEngine>();
                if (w.LoadedEngine is { } e) leaked += e.GetStats().UsedBlocks;
            }
            if (leaked != 0) await Task.Delay(100);
        }
        long rssEnd = Rss(compact: true);
        double growth = (double)(rssEnd - rssStart) / rssStart;
        double growthSinceReplaced = rssReplaced == 0 ? double.NaN : (double)(rssEnd - rssReplaced) / rssReplaced;
        // The working set also holds what the runtime keeps committed after a collection and the
        // replacement silo's own pools; the managed heap after a full compacting collection is
        // what requests and faults could leave reachable.
        long heapEnd = GC.GetTotalMemory(forceFullCollection: false);
        double heapGrowth = (double)(heapEnd - heapStart) / heapStart;
        int threadsEnd = Process.GetCurrentProcess().Threads.Count;
        var ttft = tally.Ttft.Order().ToList();
        double p99 = ttft.Count == 0 ? 0 : ttft[Math.Min(ttft.Count - 1, (int)(0.99 * ttft.Count))];

        Console.WriteLine();
        Console.WriteLine($"requests {tally.Requests}: completed {tally.Completed}, failed_clear {tally.FailedClear}, client disconnects {tally.Disconnected}, unclear {tally.Unclear}, hung {tally.Hung}");
        Console.WriteLine($"statuses: {string.Join(", ", tally.ByStatus.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}x{kv.Value}"))}; poison requests {tally.Poison} (refused with a clear error: {tally.PoisonRefused})");
        Console.WriteLine($"leaked KV blocks after drain {leaked}; RSS {rssStart / 1048576.0:F0} -> {rssEnd / 1048576.0:F0} MiB ({growth:P1}; {rssReplaced / 1048576.0:F0} MiB once the replacement silo ran, {growthSinceReplaced:P1} since); " +
            $"managed heap {heapStart / 1048576.0:F0} -> {heapEnd / 1048576.0:F0} MiB ({heapGrowth:P1}); threads {threadsStart} -> {threadsEnd}; p99 TTFT of undisturbed streams {p99:F0} ms");
        var result = new Dictionary<string, object>
        {
            ["minutes"] = duration.TotalMinutes,
            ["offered_rate_req_s"] = rate,
            ["requests"] = tally.Requests,
            ["completed"] = tally.Completed,
            ["failed_clear"] = tally.FailedClear,
            ["unclear"] = tally.Unclear,
            ["hung"] = tally.Hung,
            ["client_disconnects"] = tally.Disconnected,
            ["poison_requests"] = tally.Poison,
            ["poison_refused_clearly"] = tally.PoisonRefused,
            ["statuses"] = tally.ByStatus.ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value),
            ["leaked_kv_blocks"] = leaked,
            ["rss_growth_fraction"] = Math.Round(growth, 4),
            ["rss_after_replacement_mib"] = Math.Round(rssReplaced / 1048576.0, 1),
            ["rss_growth_since_replacement_fraction"] = double.IsNaN(growthSinceReplaced) ? -1 : Math.Round(growthSinceReplaced, 4),
            ["managed_heap_growth_fraction"] = Math.Round(heapGrowth, 4),
            ["threads_start"] = threadsStart,
            ["threads_end"] = threadsEnd,
            ["p99_ttft_ms"] = Math.Round(p99, 1),
        };
        var text = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        if (json is not null)
        {
            File.WriteAllText(json, text);
            Console.WriteLine($"wrote {json}");
        }
        else Console.WriteLine(text);
        return tally.Hung == 0 && leaked == 0 && tally.Unclear == 0 ? 0 : 1;
    }

    private static int[] Prompt(Random rng, bool poison)
    {
        var p = Enumerable.Range(0, rng.Next(8, 64)).Select(_ => rng.Next(1, 199)).ToArray();
        if (poison) p[p.Length / 2] = PoisonToken;
        return p;
    }

    private static long Rss(bool compact)
    {
        if (compact)
        {
            // Aggressive: the GC also hands its free, committed regions back to the OS, so both ends of
            // the comparison count memory something holds, not the GC's cache of empty regions.
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
        return Process.GetCurrentProcess().WorkingSet64;
    }

    /// <summary>One request over HTTP: its outcome goes into <paramref name="tally"/>.</summary>
    private static async Task OneAsync(HttpClient http, int[] prompt, bool stream, TimeSpan? disconnectAfter, Tally tally, TimeSpan deadline, bool poison)
    {
        var body = JsonSerializer.Serialize(new { model = "simulated", prompt, max_tokens = 32, stream, ignore_eos = true });
        using var cts = new CancellationTokenSource(deadline);
        using var disconnect = new CancellationTokenSource();
        if (disconnectAfter is { } d) disconnect.CancelAfter(d);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(cts.Token, disconnect.Token);
        var sw = Stopwatch.StartNew();
        try
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, both.Token);
            int status = (int)resp.StatusCode;
            lock (tally) tally.ByStatus[status] = tally.ByStatus.GetValueOrDefault(status) + 1;
            if (!resp.IsSuccessStatusCode)
            {
                string err = await resp.Content.ReadAsStringAsync(both.Token);
                Classify(tally, IsErrorBody(err), poison);
                return;
            }
            if (!stream)
            {
                var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync(both.Token)).RootElement;
                bool done = doc.GetProperty("choices")[0].GetProperty("finish_reason").GetString() is "length" or "stop";
                lock (tally) { if (done) tally.Completed++; else tally.Unclear++; }
                return;
            }
            using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync(both.Token));
            bool first = true, finished = false, errored = false;
            while (await reader.ReadLineAsync(both.Token) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                var data = line[6..];
                if (data == "[DONE]") { finished = true; break; }
                if (data.Contains("\"error\"", StringComparison.Ordinal)) { errored = IsErrorBody(data); finished = true; break; }
                if (first && disconnectAfter is null && !poison)
                {
                    first = false;
                    lock (tally) tally.Ttft.Add(sw.Elapsed.TotalMilliseconds);
                }
            }
            if (errored) Classify(tally, true, poison);
            else lock (tally) { if (finished) tally.Completed++; else tally.Unclear++; }
        }
        catch (OperationCanceledException) when (disconnect.IsCancellationRequested && !cts.IsCancellationRequested)
        {
            lock (tally) tally.Disconnected++;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            lock (tally) tally.Hung++;
        }
        catch (HttpRequestException)
        {
            lock (tally) tally.Unclear++;
        }
    }

    private static void Classify(Tally tally, bool clear, bool poison)
    {
        lock (tally)
        {
            if (clear) tally.FailedClear++;
            else tally.Unclear++;
            if (poison) { tally.Poison++; if (clear) tally.PoisonRefused++; }
        }
    }

    /// <summary>OpenAI's error shape: {"error": {"message": "...", "type": "..."}}.</summary>
    private static bool IsErrorBody(string text)
    {
        try
        {
            var e = JsonDocument.Parse(text).RootElement.GetProperty("error");
            return e.GetProperty("message").GetString() is { Length: > 0 } && e.GetProperty("type").GetString() is { Length: > 0 };
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return false;
        }
    }

    private sealed class Gateway(WebApplication app, Uri uri) : IAsyncDisposable
    {
        public Uri Uri { get; } = uri;

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>The gateway's HTTP API (the same registration `loom serve` uses) on a loopback port, over the cluster client.</summary>
    private static async Task<Gateway> StartGatewayAsync(IGenerationClient client)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.Logging.ClearProviders();
        int port = 0;
        Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? listen = null;
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => listen = l));
        builder.Services.AddSingleton(client);
        builder.Services.AddLoomApi(o => o.GrpcPort = 0);
        var app = builder.Build();
        app.MapLoomApi();
        await app.StartAsync();
        return new Gateway(app, new Uri($"http://127.0.0.1:{listen!.IPEndPoint!.Port}/"));
    }
}
