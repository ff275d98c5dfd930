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
        Skip.If(ClusterProcesses.RedisServer is null, "redis-server is not installed (scripts/install-deps.sh installs it from apt)");
        await using var procs = new ClusterProcesses();
        var (silos, http, baseUrl) = await StartClusterAsync(procs);
        using var _ = http;
        var prompts = Prompts();
        var expected = await Task.WhenAll(prompts.Select(p => CompleteAsync(http, baseUrl, p)));
        Assert.All(expected, e => Assert.Equal(MaxTokens, e.Tokens));

        var sw = Stopwatch.StartNew();
        var disturbed = prompts.Select(p => CompleteAsync(http, baseUrl, p)).ToArray();
        await Task.Delay(800); // every stream is ~40 steps in, ~80 to go
        silos[0].KillHard();
        var killedAt = sw.Elapsed;
        var got = await Task.WhenAll(disturbed);
        output.WriteLine($"kill -9 at {killedAt.TotalSeconds:F2} s; all {Requests} requests done {(sw.Elapsed - killedAt).TotalSeconds:F2} s later (undisturbed they take ~{MaxTokens * 0.02:F1} s)");
        AssertSameAnswers(procs, expected, got);

        // The survivor alone still serves.
        var after = await CompleteAsync(http, baseUrl, prompts[0]);
        Assert.Equal(expected[0].Text, after.Text);
    }

    [SkippableFact]
    public async Task SigtermDrainsASiloWithoutLosingARequest()
    {
        Skip.If(ClusterProcesses.RedisServer is null, "redis-server is not installed (scripts/install-deps.sh installs it from apt)");
        await using var procs = new ClusterProcesses();
        var (silos, http, baseUrl) = await StartClusterAsync(procs);
        using var _ = http;
        var prompts = Prompts();
        var expected = await Task.WhenAll(prompts.Select(p => CompleteAsync(http, baseUrl, p)));

        var sw = Stopwatch.StartNew();
        var during = prompts.Select(p => CompleteAsync(http, baseUrl, p)).ToList();
        await Task.Delay(800);
        silos[0].Terminate();
        var termAt = sw.Elapsed;
        await Task.Delay(300);
        // Requests that arrive while it drains go to the other silo.
        during.AddRange(prompts.Take(3).Select(p => CompleteAsync(http, baseUrl, p)));
        var got = await Task.WhenAll(during);
        AssertSameAnswers(procs, [.. expected, .. expected.Take(3)], got);

        Assert.True(await WaitExitAsync(silos[0].Process, TimeSpan.FromSeconds(30)), $"silo-a did not exit after SIGTERM:\n{silos[0].Log}");
        output.WriteLine($"SIGTERM at {termAt.TotalSeconds:F2} s; silo-a exited with {silos[0].Process.ExitCode} {(sw.Elapsed - termAt).TotalSeconds:F2} s later");
        Assert.Equal(0, silos[0].Process.ExitCode);
        Assert.Contains("draining", silos[0].Log, StringComparison.Ordinal);
    }

    private static int[][] Prompts() =>
        // Different first blocks, so least-load routing spreads them over both silos.
        [.. Enumerable.Range(0, Requests).Select(i => Enumerable.Range(0, 20).Select(t => 1 + (i * 31 + t * 7) % 250).ToArray())];

    private static void AssertSameAnswers(ClusterProcesses procs, (int Status, string Text, int Tokens, string Body)[] expected, (int Status, string Text, int Tokens, string Body)[] got)
    {
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
        {
            Assert.True(got[i].Status == 200, $"request {i}: {got[i].Status} {got[i].Body}\n{procs.Logs()}");
            Assert.Equal(MaxTokens, got[i].Tokens);
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
    private static async Task<(List<LoomProcess> Silos, HttpClient Http, string BaseUrl)> StartClusterAsync(ClusterProcesses procs)
    {
        // Every port this cluster needs, chosen at once so none collides with another.
        var ports = new Queue<int>(ClusterProcesses.FreePorts(9));
        int redisPort = ports.Dequeue(), httpPort = ports.Dequeue();
        string redis = $"127.0.0.1:{redisPort}", clusterId = "mp-" + Guid.NewGuid().ToString("N")[..8];
        procs.StartRedis(redisPort);

        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var silos = new List<LoomProcess>();
        foreach (var name in new[] { "silo-a", "silo-b" })
        {
            int health = ports.Dequeue();
            var silo = procs.StartSilo(name,
            [
                $"cluster:redis={redis}", $"cluster:cluster_id={clusterId}", "cluster:advertised_ip=127.0.0.1",
                $"cluster:silo_port={ports.Dequeue()}", $"cluster:gateway_port={ports.Dequeue()}", $"cluster:health_port={health}",
                "engine:backend=simulated", "simulated:step_overhead_ms=20", "simulated:per_token_ms=0.01", "simulated:vocab_size=256",
            ]);
            await silo.WaitReadyAsync(http, $"http://127.0.0.1:{health}/health", TimeSpan.FromMinutes(2));
            silos.Add(silo);
        }

        var gateway = procs.StartGateway("gateway",
            [$"cluster:redis={redis}", $"cluster:cluster_id={clusterId}", $"gateway:http_port={httpPort}", $"gateway:grpc_port={ports.Dequeue()}"]);
        var baseUrl = $"http://127.0.0.1:{httpPort}";
        await gateway.WaitReadyAsync(http, baseUrl + "/v1/models", TimeSpan.FromMinutes(2));
        using (var models = JsonDocument.Parse(await http.GetStringAsync(baseUrl + "/v1/models")))
            Assert.Equal("simulated", models.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
        await Task.Delay(1500); // the router's load view refreshes every few hundred ms: let it see both workers
        return (silos, http, baseUrl);
    }

    private static async Task<(int Status, string Text, int Tokens, string Body)> CompleteAsync(HttpClient http, string baseUrl, int[] prompt)
    {
        using var r = await http.PostAsJsonAsync(baseUrl + "/v1/completions",
            new { model = "simulated", prompt, max_tokens = MaxTokens, temperature = 0, ignore_eos = true });
        var body = await r.Content.ReadAsStringAsync();
        if (!r.IsSuccessStatusCode) return ((int)r.StatusCode, "", 0, body);
        using var doc = JsonDocument.Parse(body);
        return (200, doc.RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!,
            doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), body);
    }
}
