using Loom.Testing;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Loom.Cluster.Tests;

/// <summary>
/// Real processes for multi-process cluster tests: redis-server from apt, and the silo and gateway
/// executables from this test's own output folder (the project references copy them there).
/// Everything started is killed on dispose.
/// </summary>
internal sealed class ClusterProcesses : IAsyncDisposable
{
    private readonly List<LoomProcess> _all = [];

    public static string? RedisServer => TestHost.FindOnPath("redis-server");

    public LoomProcess StartRedis(int port) =>
        Start("redis", RedisServer ?? throw new InvalidOperationException("redis-server is not installed"),
            ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);

    /// <summary>`dotnet Loom.Silo.dll` with <paramref name="settings"/> as `--section:key=value` switches.</summary>
    public LoomProcess StartSilo(string name, IEnumerable<string> settings) =>
        Start(name, "dotnet", [Path.Combine(AppContext.BaseDirectory, "Loom.Silo.dll"), .. settings.Select(s => "--" + s)]);

    /// <summary>`dotnet loom.dll serve` with <paramref name="settings"/> as switches.</summary>
    public LoomProcess StartGateway(string name, IEnumerable<string> settings) =>
        Start(name, "dotnet", [Path.Combine(AppContext.BaseDirectory, "loom.dll"), "serve", .. settings.Select(s => "--" + s)]);

    public string Logs() => string.Join("\n", _all.Select(p => $"--- {p.Name} ---\n{p.Log}"));

    private LoomProcess Start(string name, string file, IReadOnlyList<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("LOOM_", StringComparison.Ordinal)).ToList()) psi.Environment.Remove(key);
        var p = new LoomProcess(name, Process.Start(psi) ?? throw new InvalidOperationException("could not start " + name));
        _all.Add(p);
        return p;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in Enumerable.Reverse(_all)) await p.DisposeAsync();
    }
}

/// <summary>One child process with its combined output captured.</summary>
internal sealed class LoomProcess : IAsyncDisposable
{
    private readonly StringBuilder _log = new();

    public LoomProcess(string name, Process process)
    {
        Name = name;
        Process = process;
        process.OutputDataReceived += (_, d) => { lock (_log) _log.AppendLine(d.Data); };
        process.ErrorDataReceived += (_, d) => { lock (_log) _log.AppendLine(d.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }
    public Process Process { get; }
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <summary>kill -9: no shutdown code runs, as when a node dies.</summary>
    public void KillHard() => Process.Kill(entireProcessTree: false);

    /// <summary>SIGTERM, what Kubernetes sends before the grace period ends.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", Process.Id.ToString(CultureInfo.InvariantCulture)]);
        kill!.WaitForExit();
    }

    /// <summary>Polls an HTTP endpoint until it answers 200, failing early if the process exits.</summary>
    public async Task WaitReadyAsync(HttpClient http, string url, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Process.HasExited) throw new InvalidOperationException($"{Name} exited with {Process.ExitCode} before it was ready:\n{Log}");
            try
            {
                using var r = await http.GetAsync(url);
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException($"{Name} was not ready at {url} within {timeout}:\n{Log}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                await Process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException) { }
        Process.Dispose();
    }
}
