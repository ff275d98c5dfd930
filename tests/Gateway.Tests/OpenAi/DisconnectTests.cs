using System.Text.Json;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>A client that goes away mid-stream aborts its request on the worker (which frees its KV blocks).</summary>
public sealed class DisconnectTests : IAsyncLifetime
{
    private LoomTestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await LoomTestServer.StartAsync();
        _server.Cluster.Script = (_, _) => new string('x', 250);
        _server.Cluster.TokenDelay = TimeSpan.FromMilliseconds(20);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task StreamThenDropAsync(string path, string body)
    {
        using var cts = new CancellationTokenSource();
        var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        using var resp = await _server.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var stream = await resp.Content.ReadAsStreamAsync(cts.Token);
        var buf = new byte[256];
        Assert.True(await stream.ReadAsync(buf, cts.Token) > 0); // at least one chunk arrived
        await cts.CancelAsync(); // drop the connection mid-stream
    }

    private async Task WaitForAsync(Func<bool> condition, string what)
    {
        for (int i = 0; i < 200 && !condition(); i++) await Task.Delay(25);
        Assert.True(condition(), what);
    }

    [Theory]
    [InlineData("v1/chat/completions", """{"messages":[{"role":"user","content":"a"}],"stream":true}""")]
    [InlineData("v1/completions", """{"prompt":"a","max_tokens":200,"stream":true,"n":2}""")]
    public async Task Disconnect_CancelsTheWorkerRequest(string path, string body)
    {
        await StreamThenDropAsync(path, body);
        string id = _server.Cluster.Requests.Last().RequestId;
        await WaitForAsync(() => _server.Cluster.Cancelled.ContainsKey(id), "the worker request was not cancelled");
        Assert.False(_server.Cluster.Completed.ContainsKey(id));
    }

    [Fact]
    public async Task FiftyAbortedStreams_AllCancelled_AndNothingLeftInFlight()
    {
        await Task.WhenAll(Enumerable.Range(0, 50).Select(_ =>
            StreamThenDropAsync("v1/completions", """{"prompt":"a","max_tokens":200,"stream":true}""")));
        await WaitForAsync(() => _server.Cluster.Cancelled.Count == 50, $"only {_server.Cluster.Cancelled.Count} of 50 cancelled");
        await WaitForAsync(() => InFlight().Result == 0, "requests still in flight");
        Assert.Empty(_server.Cluster.Completed);
        using var health = await _server.Http.GetAsync("health");
        Assert.True(health.IsSuccessStatusCode);
    }

    [Fact]
    public async Task NonStreamingDisconnect_AlsoCancels()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            _server.PostJsonAsync("v1/completions", """{"prompt":"a","max_tokens":200}""", ct: cts.Token));
        string id = _server.Cluster.Requests.Last().RequestId;
        await WaitForAsync(() => _server.Cluster.Cancelled.ContainsKey(id), "the worker request was not cancelled");
    }

    private async Task<double> InFlight()
    {
        string text = await _server.Http.GetStringAsync("metrics");
        var line = text.Split('\n').Single(l => l.StartsWith("loom:gateway_requests_in_flight{", StringComparison.Ordinal));
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
