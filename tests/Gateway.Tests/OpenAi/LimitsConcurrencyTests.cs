using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Loom.Gateway.Grpc.V1;
using Loom.Gateway.OpenAi;
using Loom.Silo.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// Issue 12, gateway.max_concurrent_requests: past the limit a request is refused at once with a
/// 429 and Retry-After (gRPC: RESOURCE_EXHAUSTED with a retry-after trailer), never queued, and
/// every way a request ends gives its slot back. Every wait here has a deadline.
/// </summary>
public sealed class LimitsConcurrencyTests : IAsyncLifetime
{
    private const int Max = 3;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private LoomTestServer _server = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _server = await LoomTestServer.StartAsync(o => o.MaxConcurrentRequests = Max);
        _channel = GrpcChannel.ForAddress(_server.GrpcUri);
    }

    public async Task DisposeAsync()
    {
        _server.Cluster.Hold?.TrySetResult();
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    private RequestGate Gate => _server.Services.GetRequiredService<RequestGate>();

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        using var cts = new CancellationTokenSource(Bound);
        while (!condition())
        {
            Assert.False(cts.IsCancellationRequested, "timed out waiting until " + what);
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task Limits_FloodBeyondMaxConcurrentRequests_Gets429s_WithRetryAfter_AndNeverHangs()
    {
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.Cluster.Hold = hold;
        using var bound = new CancellationTokenSource(Bound);
        var holders = Enumerable.Range(0, Max)
            .Select(i => _server.PostJsonAsync(i % 2 == 0 ? "v1/completions" : "v1/chat/completions",
                i % 2 == 0 ? """{"prompt":"hi","max_tokens":3}""" : """{"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}""", ct: bound.Token))
            .ToList();
        await WaitUntilAsync(() => _server.Cluster.Requests.Count == Max, $"{Max} requests hold their slots");
        Assert.Equal(Max, Gate.Open);

        // The flood: every one is refused at once, HTTP (streamed or not) and gRPC alike.
        var flood = Enumerable.Range(0, 24).Select(async i =>
        {
            string body = (i % 3) switch
            {
                0 => """{"prompt":"hi"}""",
                1 => """{"prompt":"hi","stream":true}""",
                _ => """{"messages":[{"role":"user","content":"hi"}]}""",
            };
            using var resp = await _server.PostJsonAsync(i % 3 == 2 ? "v1/chat/completions" : "v1/completions", body, ct: bound.Token);
            string text = await resp.Content.ReadAsStringAsync(bound.Token);
            Assert.True(resp.StatusCode == HttpStatusCode.TooManyRequests, $"{(int)resp.StatusCode} {text}");
            Assert.Equal("1", resp.Headers.RetryAfter?.ToString());
            ErrorShape.Assert(text, null);
            Assert.Contains("max_concurrent_requests", text);
            Assert.Contains("\"code\":\"overloaded\"", text);
        }).ToList();
        var grpcFlood = Enumerable.Range(0, 6).Select(async _ =>
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () =>
            {
                using var call = new Generation.GenerationClient(_channel).Generate(new GenerateRequest { Text = "hi" }, deadline: DateTime.UtcNow + Bound);
                await call.ResponseStream.MoveNext(bound.Token);
            });
            Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
            Assert.Equal("1", e.Trailers.GetValue("retry-after"));
        }).ToList();
        await Task.WhenAll(flood.Concat(grpcFlood)).WaitAsync(Bound);
        Assert.Equal(Max, _server.Cluster.Requests.Count); // none of the flood reached the cluster

        hold.SetResult();
        foreach (var h in holders)
        {
            using var resp = await h.WaitAsync(Bound);
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
            await resp.Content.ReadAsStringAsync(bound.Token);
        }
        await WaitUntilAsync(() => Gate.Open == 0, "the holders give their slots back");
        // More requests one after another than there are slots: a leaked slot would show here.
        for (int i = 0; i < 2 * Max; i++)
            await _server.PostOkAsync("v1/completions", """{"prompt":"hi","max_tokens":2}""");
    }

    [Fact]
    public async Task Limits_EveryWayARequestEnds_GivesItsSlotBack()
    {
        // Refused by validation, failed in the cluster, cancelled by the client: 2 × Max of each.
        for (int i = 0; i < 2 * Max; i++)
        {
            using var bad = await _server.PostJsonAsync("v1/completions", """{"prompt":"hi","n":0}""");
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }
        _server.Cluster.Throw = new InvalidOperationException("boom");
        for (int i = 0; i < 2 * Max; i++)
        {
            using var failed = await _server.PostJsonAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""");
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }
        _server.Cluster.Throw = null;
        _server.Cluster.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        for (int i = 0; i < 2 * Max; i++)
        {
            using var cts = new CancellationTokenSource();
            var pending = _server.PostJsonAsync("v1/completions", """{"prompt":"hi"}""", ct: cts.Token);
            await WaitUntilAsync(() => Gate.Open == 1, "the request holds a slot");
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(Bound));
            await WaitUntilAsync(() => Gate.Open == 0, "the cancelled request gives its slot back");
        }
        _server.Cluster.Hold.SetResult();
        await _server.PostOkAsync("v1/completions", """{"prompt":"hi","max_tokens":2}""");
        Assert.Equal(0, Gate.Open);
    }

    [Fact]
    public void Limits_MaxConcurrentRequests_IsAConfigKey()
    {
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["gateway:max_concurrent_requests"] = "7" }).Build();
        Assert.Equal(7, LoomConfiguration.Bind(config).Gateway.MaxConcurrentRequests);
        var negative = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["gateway:max_concurrent_requests"] = "-1" }).Build();
        var e = Assert.Throws<LoomConfigException>(() => LoomConfiguration.Bind(negative));
        Assert.Equal("gateway.max_concurrent_requests", e.Key);
    }

    [Fact]
    public async Task Limits_ZeroMeansUnlimited()
    {
        await using var server = await LoomTestServer.StartAsync(o => o.MaxConcurrentRequests = 0);
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Cluster.Hold = hold;
        var many = Enumerable.Range(0, 20).Select(_ => server.PostJsonAsync("v1/completions", """{"prompt":"hi","max_tokens":2}""")).ToList();
        await WaitUntilAsync(() => server.Cluster.Requests.Count == 20, "all 20 are admitted");
        hold.SetResult();
        foreach (var r in many)
        {
            using var resp = await r.WaitAsync(Bound);
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        }
    }
}
