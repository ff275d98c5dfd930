using Loom.Testing;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using k8s.Models;
using Loom.Deploy.Tests.Infrastructure;
using C = Loom.Deploy.Tests.DeployContract;

namespace Loom.Deploy.Tests;

/// <summary>
/// As close to Kubernetes as this machine gets: render the chart, then run the
/// published silo and gateway with exactly the command, arguments, environment
/// and config file the chart gives their containers (fieldRefs resolved as the
/// kubelet would, pod IP = 127.0.0.1, /etc/loom → a temp folder, /app → the
/// publish folder), against a Redis from apt, and check that they form a cluster
/// and serve a completion. Skips, saying why, until the executables support it.
/// </summary>
public sealed class DeployClusterTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-deploy-").FullName;
    private readonly List<(string Name, Process Process, StringBuilder Log)> _processes = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var (_, p, _) in Enumerable.Reverse(_processes))
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
            }

            p.Dispose();
        }

        Directory.Delete(_dir, recursive: true);
    }

    [SkippableFact]
    public async Task ChartEnvironmentFormsAClusterAndServesACompletion()
    {
        var redisServer = TestHost.FindOnPath("redis-server");
        Skip.If(redisServer is null, "redis-server is not installed (apt-get install redis-server)");
        var (gatewayDir, siloDir) = await RequireExecutablesAsync();

        var ports = TestHost.FreePorts(6);
        var (redisPort, siloPort, orleansGatewayPort, healthPort, httpPort, grpcPort) = (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);
        const string release = "e2e";
        var chart = new RenderedChart(release, await Helm.TemplateAsync(
            release,
            null,
            "redis.enabled=false",
            $"redis.external.connectionString=127.0.0.1:{redisPort}",
            "config.device=cpu",
            "config.engine.backend=simulated",
            "model.source=none",
            "silo.gpus=0",
            "silo.replicas=1",
            "apiKeys.keys={sk-e2e}",
            $"config.cluster.silo_port={siloPort}",
            $"config.cluster.gateway_port={orleansGatewayPort}",
            $"config.cluster.health_port={healthPort}",
            $"config.gateway.http_port={httpPort}",
            $"config.gateway.grpc_port={grpcPort}"));

        var configDir = Path.Combine(_dir, "etc-loom");
        Directory.CreateDirectory(configDir);
        foreach (var (key, value) in chart.ConfigMap.Data)
        {
            await File.WriteAllTextAsync(Path.Combine(configDir, key), value);
        }

        Start("redis", redisServer!, ["--port", redisPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], _dir, new Dictionary<string, string>());

        var siloPod = chart.Silo.Metadata.Name + "-0";
        StartContainer("silo", chart, chart.SiloContainer, siloPod, siloDir, configDir);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await WaitForProbeAsync(http, "silo", chart.SiloContainer, chart.SiloContainer.ReadinessProbe, TimeSpan.FromMinutes(3));

        StartContainer("gateway", chart, chart.GatewayContainer, chart.Gateway.Metadata.Name + "-abc12-xyz34", gatewayDir, configDir);
        await WaitForProbeAsync(http, "gateway", chart.GatewayContainer, chart.GatewayContainer.ReadinessProbe, TimeSpan.FromMinutes(2));

        var baseUrl = $"http://127.0.0.1:{httpPort}";
        http.DefaultRequestHeaders.Authorization = new("Bearer", "sk-e2e");
        using var models = JsonDocument.Parse(await http.GetStringAsync(baseUrl + C.ModelsPath));
        var model = models.RootElement.GetProperty("data")[0].GetProperty("id").GetString();

        using var response = await http.PostAsJsonAsync(baseUrl + C.CompletionsPath, new { model, prompt = "Hello from Kubernetes", max_tokens = 8, temperature = 0 });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {body}\n{Logs()}");
        using var completion = JsonDocument.Parse(body);
        var choice = completion.RootElement.GetProperty("choices")[0];
        Assert.True(choice.GetProperty("text").GetString()!.Length > 0 || completion.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0, body);

        // The API key from the chart's Secret is enforced.
        using var anonymous = new HttpClient();
        using var denied = await anonymous.PostAsJsonAsync(baseUrl + C.CompletionsPath, new { model, prompt = "x", max_tokens = 1 });
        Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);

        using var metrics = await http.GetAsync(baseUrl + C.MetricsPath);
        Assert.Contains("vllm:", await metrics.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    /// <summary>The published executables, or a skip naming what they still lack.</summary>
    private static async Task<(string Gateway, string Silo)> RequireExecutablesAsync()
    {
        var gw = await Published.GatewayAsync();
        Assert.True(gw.ExitCode == 0, gw.Describe("publish gateway"));
        var silo = await Published.SiloAsync();
        Assert.True(silo.ExitCode == 0, silo.Describe("publish silo"));
        var (gatewayDir, siloDir) = (Published.Dir("gateway"), Published.Dir("silo"));

        Assert.True(File.Exists(Path.Combine(siloDir, Path.ChangeExtension(C.SiloDll, ".runtimeconfig.json"))), $"{C.SiloDll} is not an executable");
        return (gatewayDir, siloDir);
    }

    /// <summary>Runs a container's command as the kubelet would, mapped onto this machine.</summary>
    private void StartContainer(string name, RenderedChart chart, V1Container container, string podName, string appDir, string configDir)
    {
        string Map(string s) => s.Replace(C.ConfigMountDir, configDir, StringComparison.Ordinal);
        var command = container.Command.Concat(container.Args ?? []).Select(Map).ToList();
        Assert.Equal("dotnet", command[0]);
        Assert.Equal(C.AppDir, container.WorkingDir);
        var env = new Dictionary<string, string>();
        foreach (var e in container.Env ?? [])
        {
            env[e.Name] = e.Value is not null ? Map(e.Value) : Resolve(chart, e.ValueFrom, podName);
        }

        Start(name, "dotnet", command.Skip(1).ToList(), appDir, env);
    }

    private static string Resolve(RenderedChart chart, V1EnvVarSource source, string podName)
    {
        if (source.FieldRef is { } field)
        {
            return field.FieldPath switch
            {
                "metadata.name" => podName,
                "metadata.namespace" => "loom-test",
                "status.podIP" => "127.0.0.1",
                var other => throw new InvalidOperationException("unmapped fieldRef " + other),
            };
        }

        if (source.SecretKeyRef is { } key)
        {
            var secret = chart.All<V1Secret>().Single(s => s.Metadata.Name == key.Name);
            return Encoding.UTF8.GetString(secret.Data[key.Key]);
        }

        throw new InvalidOperationException("unmapped env source");
    }

    private void Start(string name, string file, IReadOnlyList<string> args, string workingDir, IReadOnlyDictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = workingDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // Only the chart's environment (plus what a process needs to run at all): no LOOM_* leaks from the test host.
        foreach (var key in psi.Environment.Keys.ToList())
        {
            if (key is not ("PATH" or "HOME" or "DOTNET_ROOT" or "TMPDIR"))
            {
                psi.Environment.Remove(key);
            }
        }

        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        var log = new StringBuilder();
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + name);
        p.OutputDataReceived += (_, d) => { lock (log) { log.AppendLine(d.Data); } };
        p.ErrorDataReceived += (_, d) => { lock (log) { log.AppendLine(d.Data); } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _processes.Add((name, p, log));
    }

    private async Task WaitForProbeAsync(HttpClient http, string name, V1Container container, V1Probe probe, TimeSpan timeout)
    {
        var port = int.TryParse(probe.HttpGet.Port.Value, out var n) ? n : container.Ports.Single(p => p.Name == probe.HttpGet.Port.Value).ContainerPort;
        var url = $"http://127.0.0.1:{port}{probe.HttpGet.Path}";
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var process = _processes.Single(p => p.Name == name).Process;
            Assert.False(process.HasExited, $"{name} exited {(process.HasExited ? process.ExitCode : 0)} before turning ready\n{Logs()}");
            try
            {
                using var r = await http.GetAsync(url);
                if (r.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(500);
        }

        Assert.Fail($"{name} did not turn ready on {url} within {timeout}\n{Logs()}");
    }

    private string Logs() => string.Join("\n", _processes.Select(p => { lock (p.Log) { return $"--- {p.Name} ---\n{p.Log}"; } }));
}
