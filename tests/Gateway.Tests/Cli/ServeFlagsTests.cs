using Loom.Testing;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Gateway.Tests.Cli;

/// <summary>
/// `loom serve --model DIR --host H --port P --grpc-port 0 --api-key K --api-key K2`, run as its
/// own process the way a user starts it: the flags choose the model, the listening address and
/// port, and the accepted keys, over a YAML file that says otherwise.
/// </summary>
public sealed class ServeFlagsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-serve-flags-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task FlagsPickModelAddressPortAndKeysOverTheConfigFile()
    {
        var modelDir = Path.Combine(_dir, "my-tiny");
        ModelGenerator.Generate(ModelPresets.Get("tiny"), modelDir, new GenerateOptions { Seed = 3 });
        int port = TestHost.FreePort(), yamlPort = TestHost.FreePort();
        var yaml = Path.Combine(_dir, "loom.yaml");
        await File.WriteAllTextAsync(yaml, $"gateway:\n  http_port: {yamlPort}\n  api_keys: [from-yaml]\nengine:\n  threads: 1\n");

        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "loom.dll"), "serve", "--config", yaml, "--model", modelDir,
                     "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--grpc-port", "0",
                     "--api-key", "sk-one", "--api-key", "sk-two",
                     $"--cluster:silo_port={TestHost.FreePort()}", $"--cluster:gateway_port={TestHost.FreePort()}" })
            psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("LOOM_", StringComparison.Ordinal)).ToList()) psi.Environment.Remove(key);
        var log = new StringBuilder();
        using var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, d) => { lock (log) log.AppendLine(d.Data); };
        p.ErrorDataReceived += (_, d) => { lock (log) log.AppendLine(d.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var url = $"http://127.0.0.1:{port}/v1/models";
            HttpStatusCode status = 0;
            for (var deadline = DateTime.UtcNow.AddMinutes(2); DateTime.UtcNow < deadline && status == 0;)
            {
                Assert.False(p.HasExited, $"loom serve exited with {(p.HasExited ? p.ExitCode : 0)}:\n{log}");
                try { using var r = await http.GetAsync(url); status = r.StatusCode; }
                catch (HttpRequestException) { await Task.Delay(250); }
            }

            Assert.Equal(HttpStatusCode.Unauthorized, status); // keys are on: no key, no service
            foreach (var key in new[] { "sk-one", "sk-two", "from-yaml" })
            {
                using var req = new HttpRequestMessage(HttpMethod.Get, url);
                req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
                using var r = await http.SendAsync(req);
                Assert.True(r.IsSuccessStatusCode, $"{key}: {(int)r.StatusCode}\n{log}");
                using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
                Assert.Equal("my-tiny", doc.RootElement.GetProperty("data")[0].GetProperty("id").GetString()); // --model's folder
            }

            // The YAML port is not used; the flag's is.
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetAsync($"http://127.0.0.1:{yamlPort}/v1/models"));
            Assert.Contains($"serving on http://127.0.0.1:{port}", log.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
    }

}
