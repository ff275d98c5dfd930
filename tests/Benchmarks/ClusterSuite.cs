using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Loom.Silo.Configuration;
using Loom.Silo.Hosting;
using Loom.Silo.Worker;
using Loom.Silo.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;

namespace Loom.Benchmarks;

/// <summary>
/// `cluster`: scale-out on the simulated backend (each worker's step costs what the cost model
/// says and computes nothing, so 16 silos fit on one machine): throughput at each worker count
/// against perfect linear scaling, the router's decision time, and the prefix-cache hit rate of
/// affinity routing against random placement on a shared-prefix workload.
/// </summary>
public static class ClusterSuite
{
    public static int Run(BenchArgs args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(BenchArgs args)
    {
        int[] counts;
        double stepMs;
        try
        {
            counts = [.. (args.Get("workers") ?? "1,2,4,8,16").Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).Distinct().Order()];
            stepMs = double.Parse(args.Get("step-ms") ?? "50", CultureInfo.InvariantCulture);
            if (counts.Length == 0 || counts[0] < 1 || counts[^1] > 64) throw new FormatException("worker counts must be 1..64");
            if (!(stepMs > 0)) throw new FormatException("--step-ms must be positive");
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync($"cluster: {e.Message} (usage: cluster [--workers 1,2,4,8,16] [--step-ms 50] [--max-num-seqs 8] [--max-tokens 24] [--waves 4] [--affinity-workers 4] [--verbose] [--json FILE])");
            return 2;
        }
        int seqs = args.GetInt("max-num-seqs", 8), tokens = args.GetInt("max-tokens", 24), waves = args.GetInt("waves", 4);
        Console.WriteLine($"cluster: simulated workers ({stepMs} ms per step, {seqs} sequences per batch), {waves} batches of {tokens}-token requests per worker; " +
            $"in-process silos on {Environment.ProcessorCount} CPU(s)");

        // Warm-up (JIT, Orleans' first cluster): otherwise the first count, the baseline, runs slow and every later one looks super-linear.
        await using (var warm = await SimCluster.StartAsync(1, stepMs, seqs))
            await Task.WhenAll(Enumerable.Range(0, seqs).Select(async i =>
            {
                var r = new GenerationRequest($"warm{i}", [.. Enumerable.Range(1 + i, 24)], new SamplingParams { MaxTokens = tokens, Temperature = 0, IgnoreEos = true });
                await foreach (var _ in warm.Client.GenerateAsync(r, default)) { }
            }));

        var rows = new List<Row>();
        var pickMs = new List<double>();
        var roundTripMs = new List<double>();
        foreach (int n in counts)
        {
            await using var c = await SimCluster.StartAsync(n, stepMs, seqs);
            // Enough clients to fill every worker's batch, for `waves` batches each.
            int clients = n * seqs, requests = clients * waves;
            var rng = new Random(n);
            var work = Enumerable.Range(0, requests).Select(i => new GenerationRequest($"s{n}-{i}",
                [.. Enumerable.Range(0, 24).Select(_ => rng.Next(1, 256))], new SamplingParams { MaxTokens = tokens, Temperature = 0, IgnoreEos = true })).ToList();
            int next = -1;
            long produced = 0;
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < work.Count)
                    await foreach (var _ in c.Client.GenerateAsync(work[i], default)) Interlocked.Increment(ref produced);
            })));
            double seconds = sw.Elapsed.TotalSeconds;
            if (args.Has("verbose"))
            {
                var per = new List<string>();
                foreach (var silo in c.Cluster.Silos)
                {
                    var st = await c.Cluster.Client.GetGrain<IWorkerGrain>(silo.SiloAddress.ToParsableString()).GetStatsAsync();
                    per.Add($"{st.GenerationTokens}/{st.Preemptions}");
                }
                Console.WriteLine($"   tokens/preemptions per worker: {string.Join(" ", per)}"); // balance: a skew here costs whole batches
            }
            double rate = produced / seconds;
            // Linear scaling from the smallest count (normally 1 worker), which is the baseline.
            double linear = rows.Count == 0 ? rate : rows[0].TokS / rows[0].Workers * n;
            rows.Add(new Row(n, requests, produced, seconds, rate, rate / linear));
            if (n == counts[^1])
            {
                // The router's decision as the routers timed it under this load (load view + policy), on every silo.
                foreach (var silo in c.Cluster.Silos)
                    pickMs.AddRange(silo.ServiceProvider.GetRequiredService<WorkerDirectory>().RecentPickMilliseconds());
                // ... and as a caller sees it: one PickWorkerAsync round trip.
                var router = c.Cluster.Client.GetGrain<IRouterGrain>(0);
                for (int i = 0; i < 300; i++)
                {
                    var t = Stopwatch.GetTimestamp();
                    await router.PickWorkerAsync(work[i % work.Count].PromptTokenIds);
                    roundTripMs.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                }
            }
            Console.WriteLine($"{n,2} worker(s): {rate,7:F0} tok/s, {rows[^1].Efficiency:P1} of linear");
        }

        // The policy alone, 16 workers, no network.
        var policy = new RoutingPolicy();
        var loads = Enumerable.Range(0, 16).Select(i => new WorkerLoad($"w{i}", i % 5, 0, 100 + i, 0.3, i % 3)).ToList();
        var prng = new Random(1);
        var policyMs = new List<double>();
        for (int i = 0; i < 20000; i++)
        {
            int[] prompt = [.. Enumerable.Range(0, 64).Select(_ => prng.Next(1, 30000))];
            var t = Stopwatch.GetTimestamp();
            policy.Pick(loads, prompt);
            policyMs.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }

        // Per-token host work must not scale with the vocabulary: the same 64 concurrent 200-token
        // greedy requests on one simulated worker with a 32,000- and a 151,936-token vocabulary.
        double small = await VocabThroughputAsync(32_000), large = await VocabThroughputAsync(151_936);
        Console.WriteLine($"vocabulary scaling (64 x 200 greedy tokens, 1 worker): {small:F0} tok/s at 32,000, {large:F0} tok/s at 151,936: {large / small:F2}x");

        // Batches wide enough that a conversation's turn is never pushed off its worker by a full batch.
        int affinityWorkers = args.GetInt("affinity-workers", 4);
        var (affinity, random) = await PrefixHitRatesAsync(affinityWorkers, stepMs, 32);
        int top = counts[^1];
        var result = new Dictionary<string, object>
        {
            ["backend"] = "simulated",
            ["host_cpus"] = Environment.ProcessorCount,
            ["step_ms"] = stepMs,
            ["max_num_seqs"] = seqs,
            ["tok_s"] = rows.ToDictionary(r => r.Workers.ToString(CultureInfo.InvariantCulture), r => Math.Round(r.TokS, 1)),
            ["efficiency"] = rows.ToDictionary(r => r.Workers.ToString(CultureInfo.InvariantCulture), r => Math.Round(r.Efficiency, 3)),
            [$"scaling_efficiency_{top}"] = Math.Round(rows[^1].Efficiency, 3),
            ["router_p99_ms"] = Math.Round(Percentile(pickMs, 0.99), 4),
            ["router_p50_ms"] = Math.Round(Percentile(pickMs, 0.5), 4),
            ["router_picks_timed"] = pickMs.Count,
            ["router_roundtrip_p99_ms"] = Math.Round(Percentile(roundTripMs, 0.99), 3),
            ["router_policy_p99_ms"] = Math.Round(Percentile(policyMs, 0.99), 4),
            ["vocab_scaling"] = Math.Round(large / small, 3),
            ["vocab_32000_tok_s"] = Math.Round(small, 1),
            ["vocab_151936_tok_s"] = Math.Round(large, 1),
            ["affinity_workers"] = affinityWorkers,
            ["affinity_hit_rate"] = Math.Round(affinity, 3),
            ["random_hit_rate"] = Math.Round(random, 3),
        };

        Console.WriteLine();
        Console.WriteLine("workers  requests   tokens   seconds     tok/s  tok/s/worker  efficiency");
        foreach (var r in rows)
            Console.WriteLine($"{r.Workers,7}  {r.Requests,8}  {r.Tokens,7}  {r.Seconds,8:F2}  {r.TokS,8:F0}  {r.TokS / r.Workers,12:F1}  {r.Efficiency,10:P1}");
        Console.WriteLine();
        Console.WriteLine($"router decision, inside the routers at {top} workers: p50 {result["router_p50_ms"]} ms, p99 {result["router_p99_ms"]} ms over {pickMs.Count} picks (goal < 1 ms)");
        Console.WriteLine($"router round trip from the client: p99 {result["router_roundtrip_p99_ms"]} ms; policy alone over 16 workers: p99 {result["router_policy_p99_ms"]} ms");
        Console.WriteLine($"prefix-cache hit rate over {affinityWorkers} workers: affinity routing {affinity:P1}, random routing {random:P1}");
        Console.WriteLine($"scaling_efficiency_{top} = {rows[^1].Efficiency:F3} (goal >= 0.9 at 16)");
        if (args.Get("json") is { } json) File.WriteAllText(json, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    private sealed record Row(int Workers, int Requests, long Tokens, double Seconds, double TokS, double Efficiency);

    /// <summary>
    /// 32 conversations of 8 turns, each turn its conversation's 4-block prefix plus its own tail,
    /// sent once through the router (affinity) and once to a uniformly random worker; the rate is
    /// prefix-cache hit tokens over queried tokens, summed over the workers.
    /// </summary>
    private static async Task<(double Affinity, double Random)> PrefixHitRatesAsync(int n, double stepMs, int seqs)
    {
        var rates = new double[2];
        for (int mode = 0; mode < 2; mode++)
        {
            await using var c = await SimCluster.StartAsync(n, stepMs, seqs);
            var rng = new Random(7);
            var prefixes = Enumerable.Range(0, 32).Select(_ => Enumerable.Range(0, 64).Select(_ => rng.Next(1, 256)).ToArray()).ToArray();
            var keys = (await c.Cluster.Client.GetGrain<IRouterGrain>(0).GetWorkerStatsAsync()).Keys.ToArray();
            var pick = new Random(11);
            var randomWorker = new int[32, 8];
            for (int i = 0; i < 32; i++)
                for (int t = 0; t < 8; t++) randomWorker[i, t] = pick.Next(keys.Length);
            for (int turn = 0; turn < 8; turn++)
            {
                await Task.WhenAll(prefixes.Select(async (p, conv) =>
                {
                    var req = new GenerationRequest($"a{mode}-{conv}-{turn}", [.. p, .. Enumerable.Range(0, 8).Select(t => 1 + (conv * 13 + turn * 5 + t) % 250)],
                        new SamplingParams { MaxTokens = 4, Temperature = 0, IgnoreEos = true });
                    var stream = mode == 0 ? c.Client.GenerateAsync(req, default)
                        : c.Cluster.Client.GetGrain<IWorkerGrain>(keys[randomWorker[conv, turn]]).GenerateAsync(req);
                    await foreach (var _ in stream) { }
                }));
            }
            long q = 0, h = 0;
            foreach (var key in keys)
            {
                var s = await c.Cluster.Client.GetGrain<IWorkerGrain>(key).GetStatsAsync();
                q += s.PrefixCacheQueries;
                h += s.PrefixCacheHits;
            }
            rates[mode] = q == 0 ? 0 : (double)h / q;
            Console.WriteLine($"{(mode == 0 ? "affinity" : "random"),8} routing over {n} workers: prefix-cache hit rate {rates[mode]:P1}");
        }
        return (rates[0], rates[1]);
    }

    private static async Task<double> VocabThroughputAsync(int vocab)
    {
        await using var c = await SimCluster.StartAsync(1, 5, 64, vocab);
        var rng = new Random(vocab);
        var requests = Enumerable.Range(0, 64).Select(i => new GenerationRequest($"v{vocab}-{i}", [.. Enumerable.Range(0, 24).Select(_ => rng.Next(1, 250))],
            new SamplingParams { MaxTokens = 200, Temperature = 0, IgnoreEos = true })).ToList();
        long produced = 0;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(requests.Select(r => Task.Run(async () =>
        {
            await foreach (var _ in c.Client.GenerateAsync(r, default)) Interlocked.Increment(ref produced);
        })));
        return produced / sw.Elapsed.TotalSeconds;
    }

    private static double Percentile(List<double> xs, double p)
    {
        if (xs.Count == 0) return 0;
        var s = xs.OrderBy(x => x).ToList();
        return s[Math.Min(s.Count - 1, (int)(p * s.Count))];
    }

    /// <summary>An in-process cluster of simulated workers and a gateway client over it.</summary>
    private sealed class SimCluster : IAsyncDisposable
    {
        private SimCluster(InProcessTestCluster cluster)
        {
            Cluster = cluster;
            Client = new OrleansGenerationClient(cluster.Client);
        }

        public InProcessTestCluster Cluster { get; }
        public OrleansGenerationClient Client { get; }

        public static async Task<SimCluster> StartAsync(int silos, double stepMs, int seqs, int vocab = 256)
        {
            var options = new LoomOptions
            {
                Engine = new() { Backend = "simulated", MaxNumSeqs = seqs, KvCacheBytes = 16L * 1024 * 1024 },
                Simulated = new() { StepOverheadMs = stepMs, PerTokenMs = 0.01, VocabSize = vocab },
            };
            var builder = new InProcessTestClusterBuilder((short)silos);
            builder.ConfigureSilo((_, silo) =>
            {
                silo.AddLoomWorker(options);
                silo.Services.AddLogging(l => l.SetMinimumLevel(LogLevel.Error));
            });
            builder.ConfigureClient(c =>
            {
                c.ConfigureFailureDetection();
                c.Services.AddLogging(l => l.SetMinimumLevel(LogLevel.Error));
            });
            var cluster = builder.Build();
            await cluster.DeployAsync();
            var router = cluster.Client.GetGrain<IRouterGrain>(0);
            for (int i = 0; i < 400 && (await router.GetWorkerStatsAsync()).Count < silos; i++) await Task.Delay(50);
            return new SimCluster(cluster);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            try { await Cluster.StopAllSilosAsync(); } catch (Exception) { /* best effort */ }
            await Cluster.DisposeAsync();
        }
    }
}
