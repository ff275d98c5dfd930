using Loom.Testing;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Xunit.Abstractions;

namespace Loom.Cluster.Tests;

/// <summary>
/// The cluster as it runs in production: a real redis-server, two silo processes and one gateway
/// process (`loom serve` with a Redis connection is a pure client), over HTTP. `kill -9` of a silo
/// mid-load loses no request: every one completes, token for token as in an undisturbed run.
/// The silos run the simulated backend (20 ms per step, deterministic tokens) so streams last
/// long enough to be cut. SIGTERM instead drains the silo: it refuses new work, finishes what it
/// has, and exits 0.
/// </summary>
public sealed class MultiProcessFailoverTests(ITestOutputHelper output)
{
    private const int Requests = 8;
    private const int MaxTokens = 120;

    [SkippableFact]
    public async Task KillNineOfASiloLosesNoRequest()
    {
        RequireRedis();
        await using var procs = new ClusterProcesses();
        var (silos, http, baseUrl) = await StartClusterAsync(procs);
        using var _ = http;
        var prompts = Prompts();
        var expected = await CompleteAllAsync(http, baseUrl, prompts);
        Assert.All(expected, e => Assert.Equal(MaxTokens, e.Tokens));

        // The disturbed run streams, so the gap each stream sees across the kill is measured.
        var clock = Stopwatch.StartNew();
        var disturbed = prompts.Select(p => StreamAsync(http, baseUrl, p, clock)).ToArray();
        await Task.Delay(800); // every stream is ~40 steps in, ~80 to go
        var (victim, survivor, cut) = await BusiestAsync(http, silos);
        victim.Process.KillHard();
        var killedAt = clock.Elapsed.TotalSeconds;
        var streamed = await Task.WhenAll(disturbed);
        // Kill to the first chunk after it: ~one step for streams on the survivor, detection plus
        // resubmission for those that were on the killed silo.
        var resumed = streamed.Select(s => s.ChunkTimes.FirstOrDefault(t => t > killedAt, double.NaN) - killedAt).ToArray();
        var gaps = streamed.Select(s => s.ChunkTimes.Zip(s.ChunkTimes.Skip(1), (a, b) => b - a).DefaultIfEmpty(0).Max()).ToArray();
        output.WriteLine($"kill -9 of {victim.Process.Name} ({cut} streams on it) at {killedAt:F2} s; kill→resume per stream: " +
            $"{string.Join(", ", resumed.Select(r => $"{r:F2}"))} s, max {resumed.Max():F2} s; longest gap per stream: {string.Join(", ", gaps.Select(g => $"{g:F2}"))} s; " +
            $"all {Requests} done {clock.Elapsed.TotalSeconds - killedAt:F2} s after the kill (undisturbed ~{MaxTokens * 0.02:F1} s per stream)");
        output.WriteLine(string.Join("\n", procs.Logs().Split('\n').Where(l => l.Contains("dead", StringComparison.Ordinal) || l.Contains("resubmitting", StringComparison.Ordinal))));
        AssertSameAnswers(procs, expected, [.. streamed.Select(s => s.Result)]);
        Assert.True(cut > 0, "no stream was on the killed silo");
        // Detection is ~1 s here and a call lost in the dead silo's gateway is given up 2 s after it
        // went out; waiting out the 5 s response timeout instead is what this bound catches.
        Assert.True(resumed.Max() < 4.5, $"a stream resumed {resumed.Max():F2} s after the kill");

        // The survivor alone still serves.
        var after = await CompleteAsync(http, baseUrl, prompts[0]);
        Assert.Equal(expected[0].Text, after.Text);

        // No silo left: a clear 503 once the gateway has waited for a worker, not a hang.
        survivor.Process.KillHard();
        var none = Stopwatch.StartNew();
        var down = await CompleteAsync(http, baseUrl, prompts[0]);
        output.WriteLine($"no silo left: {down.Status} after {none.Elapsed.TotalSeconds:F1} s: {down.Body}");
        Assert.Equal(503, down.Status);
        Assert.Contains("overloaded", down.Body, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task SigtermDrainsASiloWithoutLosingARequest()
    {
        RequireRedis();
        await using var procs = new ClusterProcesses();
        var (silos, http, baseUrl) = await StartClusterAsync(procs);
        using var _ = http;
        var prompts = Prompts();
        var expected = await CompleteAllAsync(http, baseUrl, prompts);

        var sw = Stopwatch.StartNew();
        var during = prompts.Select(p => CompleteAsync(http, baseUrl, p)).ToList();
        await Task.Delay(800);
        var (victim, _, cut) = await BusiestAsync(http, silos);
        victim.Process.Terminate();
        var termAt = sw.Elapsed;
        await Task.Delay(300);
        // Requests that arrive while it drains go to the other silo.
        during.AddRange(prompts.Take(3).Select(p => CompleteAsync(http, baseUrl, p)));
        var got = await Task.WhenAll(during);
        AssertSameAnswers(procs, [.. expected, .. expected.Take(3)], got);

        Assert.True(cut > 0, "no stream was on the terminated silo");
        Assert.True(await WaitExitAsync(victim.Process.Process, TimeSpan.FromSeconds(30)), $"{victim.Process.Name} did not exit after SIGTERM:\n{victim.Process.Log}");
        output.WriteLine($"SIGTERM to {victim.Process.Name} ({cut} streams on it) at {termAt.TotalSeconds:F2} s; it exited with {victim.Process.Process.ExitCode} {(sw.Elapsed - termAt).TotalSeconds:F2} s later");
        Assert.Equal(0, victim.Process.Process.ExitCode);
        Assert.Contains("drained; leaving the cluster", victim.Process.Log, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task SigtermPastTheDrainBudgetHandsTheRestToTheOtherSilo()
    {
        RequireRedis();
        // The host's shutdown timeout (the chart's DOTNET_SHUTDOWNTIMEOUTSECONDS = silo.drainSeconds)
        // of 7 s leaves a 2 s drain (5 s are kept for leaving the cluster); these streams need ~8 s.
        const int Long = 400, ShutdownTimeout = 7;
        await using var procs = new ClusterProcesses();
        var (silos, http, baseUrl) = await StartClusterAsync(procs, $"shutdownTimeoutSeconds={ShutdownTimeout}");
        using var _ = http;
        var prompts = Prompts();
        var expected = await CompleteAllAsync(http, baseUrl, prompts, Long);

        var clock = Stopwatch.StartNew();
        var during = prompts.Select(p => StreamAsync(http, baseUrl, p, clock, Long)).ToArray();
        await Task.Delay(800);
        var (victim, _, cut) = await BusiestAsync(http, silos);
        victim.Process.Terminate();
        var termAt = clock.Elapsed;
        // The chart's grace period is drainSeconds + 15: Kubernetes would SIGKILL after that.
        Assert.True(await WaitExitAsync(victim.Process.Process, TimeSpan.FromSeconds(ShutdownTimeout + 15)),
            $"{victim.Process.Name} did not exit within the grace period:\n{victim.Process.Log}");
        var exitedAfter = clock.Elapsed - termAt;
        var got = await Task.WhenAll(during);
        output.WriteLine($"SIGTERM to {victim.Process.Name} ({cut} streams on it) at {termAt.TotalSeconds:F2} s; it exited with " +
            $"{victim.Process.Process.ExitCode} {exitedAfter.TotalSeconds:F2} s later; all streams done {(clock.Elapsed - termAt).TotalSeconds:F2} s after SIGTERM");
        AssertSameAnswers(procs, expected, [.. got.Select(g => g.Result)], Long);
        Assert.True(cut > 0, "no stream was on the terminated silo");
        Assert.Equal(0, victim.Process.Process.ExitCode);
        Assert.Contains("drain budget spent", victim.Process.Log, StringComparison.Ordinal);
        Assert.True(exitedAfter < TimeSpan.FromSeconds(ShutdownTimeout + 5), $"exited {exitedAfter.TotalSeconds:F1} s after SIGTERM with a {ShutdownTimeout} s shutdown timeout");
    }

    /// <summary>Log lines carry the time, so a failure's logs show how long detection took.</summary>
    private const string Timestamps = "Logging:Console:TimestampFormat=HH:mm:ss.fff ";

    private static void RequireRedis() =>
        Skip.If(ClusterProcesses.RedisServer is null, "redis-server is not installed (scripts/install-deps.sh installs it from apt)");

    /// <summary>Every prompt at once, non-streamed: the undisturbed answers a run is compared with.</summary>
    private static Task<(int Status, string Text, int Tokens, string Body)[]> CompleteAllAsync(HttpClient http, string baseUrl, int[][] prompts, int maxTokens = MaxTokens) =>
        Task.WhenAll(prompts.Select(p => CompleteAsync(http, baseUrl, p, maxTokens)));

    private static int[][] Prompts() =>
        // Shorter than a KV block: no affinity key, so least-load routing spreads them over both silos.
        [.. Enumerable.Range(0, Requests).Select(i => Enumerable.Range(0, 12).Select(t => 1 + (i * 31 + t * 7) % 250).ToArray())];

    /// <summary>One silo process and its health port's base URL (GET /health, GET /stats).</summary>
    private sealed record SiloProcess(LoomProcess Process, string Url);

    /// <summary>The silo running the most streams now (the one to cut), the other, and how many it runs.</summary>
    private static async Task<(SiloProcess Busiest, SiloProcess Other, int Running)> BusiestAsync(HttpClient http, List<SiloProcess> silos)
    {
        var running = new int[silos.Count];
        for (int i = 0; i < silos.Count; i++)
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync(silos[i].Url + "/stats"));
            running[i] = doc.RootElement.GetProperty("running").GetInt32() + doc.RootElement.GetProperty("waiting").GetInt32();
        }
        int b = running[0] >= running[1] ? 0 : 1;
        return (silos[b], silos[1 - b], running[b]);
    }

    private static void AssertSameAnswers(ClusterProcesses procs, (int Status, string Text, int Tokens, string Body)[] expected, (int Status, string Text, int Tokens, string Body)[] got,
        int maxTokens = MaxTokens)
    {
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
        {
            Assert.True(got[i].Status == 200, $"request {i}: {got[i].Status} {got[i].Body}\n{procs.Logs()}");
            Assert.Equal(maxTokens, got[i].Tokens);
            Assert.Equal(expected[i].Text, got[i].Text);
        }
    }

    private static async Task<bool> WaitExitAsync(Process p, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(cts.Token); return true; }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>Redis, two simulated silos and a client gateway on free loopback ports, all ready.</summary>
    private static async Task<(List<SiloProcess> Silos, HttpClient Http, string BaseUrl)> StartClusterAsync(ClusterProcesses procs, params string[] siloSettings)
    {
        // Every port this cluster needs, chosen at once so none collides with another.
        var ports = new Queue<int>(TestHost.FreePorts(9));
        int redisPort = ports.Dequeue(), httpPort = ports.Dequeue();
        string redis = $"127.0.0.1:{redisPort}", clusterId = "mp-" + Guid.NewGuid().ToString("N")[..8];
        procs.StartRedis(redisPort);

        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var silos = new List<SiloProcess>();
        foreach (var name in new[] { "silo-a", "silo-b" })
        {
            int health = ports.Dequeue();
            var silo = procs.StartSilo(name,
            [
                $"cluster:redis={redis}", $"cluster:cluster_id={clusterId}", "cluster:advertised_ip=127.0.0.1",
                $"cluster:silo_port={ports.Dequeue()}", $"cluster:gateway_port={ports.Dequeue()}", $"cluster:health_port={health}",
                "engine:backend=simulated", "simulated:step_overhead_ms=20", "simulated:per_token_ms=0.01", "simulated:vocab_size=256", Timestamps, .. siloSettings,
            ]);
            await silo.WaitReadyAsync(http, $"http://127.0.0.1:{health}/health", TimeSpan.FromMinutes(2));
            silos.Add(new SiloProcess(silo, $"http://127.0.0.1:{health}"));
        }

        var gateway = procs.StartGateway("gateway",
            [$"cluster:redis={redis}", $"cluster:cluster_id={clusterId}", $"gateway:http_port={httpPort}", $"gateway:grpc_port={ports.Dequeue()}", Timestamps]);
        var baseUrl = $"http://127.0.0.1:{httpPort}";
        await gateway.WaitReadyAsync(http, baseUrl + "/v1/models", TimeSpan.FromMinutes(2));
        using (var models = JsonDocument.Parse(await http.GetStringAsync(baseUrl + "/v1/models")))
            Assert.Equal("simulated", models.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
        await Task.Delay(1500); // the router's load view refreshes every few hundred ms: let it see both workers
        return (silos, http, baseUrl);
    }

    /// <summary>A streamed completion: the same answer as <see cref="CompleteAsync"/> plus when each chunk arrived on <paramref name="clock"/>.</summary>
    private static async Task<((int Status, string Text, int Tokens, string Body) Result, List<double> ChunkTimes)> StreamAsync(
        HttpClient http, string baseUrl, int[] prompt, Stopwatch clock, int maxTokens = MaxTokens)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, baseUrl + "/v1/completions")
        {
            Content = JsonContent.Create(new
            {
                model = "simulated", prompt, max_tokens = maxTokens, temperature = 0, ignore_eos = true,
                stream = true, stream_options = new { include_usage = true },
            }),
        };
        using var r = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!r.IsSuccessStatusCode) return (((int)r.StatusCode, "", 0, await r.Content.ReadAsStringAsync()), []);
        using var reader = new StreamReader(await r.Content.ReadAsStreamAsync());
        var text = new System.Text.StringBuilder();
        var events = new System.Text.StringBuilder();
        var times = new List<double>();
        int tokens = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            var data = line["data: ".Length..];
            events.AppendLine(data);
            if (data == "[DONE]") break;
            times.Add(clock.Elapsed.TotalSeconds);
            using var doc = JsonDocument.Parse(data);
            var root = doc.RootElement;
            // An error event mid-stream fails the comparison with its message in the body.
            if (root.TryGetProperty("error", out _)) return ((500, text.ToString(), tokens, events.ToString()), times);
            foreach (var c in root.GetProperty("choices").EnumerateArray()) text.Append(c.GetProperty("text").GetString());
            if (root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) tokens = u.GetProperty("completion_tokens").GetInt32();
        }
        return ((200, text.ToString(), tokens, events.ToString()), times);
    }

    private static async Task<(int Status, string Text, int Tokens, string Body)> CompleteAsync(HttpClient http, string baseUrl, int[] prompt, int maxTokens = MaxTokens)
    {
        using var r = await http.PostAsJsonAsync(baseUrl + "/v1/completions",
            new { model = "simulated", prompt, max_tokens = maxTokens, temperature = 0, ignore_eos = true });
        var body = await r.Content.ReadAsStringAsync();
        if (!r.IsSuccessStatusCode) return ((int)r.StatusCode, "", 0, body);
        using var doc = JsonDocument.Parse(body);
        return (200, doc.RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!,
            doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), body);
    }
}
