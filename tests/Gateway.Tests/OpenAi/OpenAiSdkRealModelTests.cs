using Loom.Testing;
// The OpenAI SDK marks seed experimental; using it is the point here.
#pragma warning disable OPENAI001
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Loom.Gateway.Demo;
using Loom.Gateway.Hosting;
using Loom.Silo.Configuration;
using Microsoft.AspNetCore.Builder;
using OpenAI;
using OpenAI.Chat;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// The official OpenAI SDK against the real thing: `loom serve`'s own host (Kestrel on 127.0.0.1,
/// an embedded silo, the engine) serving the demo model (a small random-weight Llama with GPT-2's
/// real tokenizer.json). Nothing is faked, so the assertions are relations that must hold for any
/// weights: streamed equals non-streamed, usage equals what was streamed, a stop string cuts the
/// greedy text at its first occurrence, seeds reproduce, greedy picks the top logprob.
/// </summary>
public sealed class OpenAiSdkRealModelTests(RealModelServer server) : IClassFixture<RealModelServer>
{
    private OpenAIClientOptions Options => new() { Endpoint = new Uri(server.BaseUri, "v1"), NetworkTimeout = TimeSpan.FromSeconds(60), RetryPolicy = new ClientRetryPolicy(0) };
    private ChatClient Chat(string key = RealModelServer.Key) => new("demo", new ApiKeyCredential(key), Options);

    private static ChatCompletionOptions Greedy(int max) => new() { Temperature = 0, MaxOutputTokenCount = max };

    [Fact]
    public async Task ChatStreamedEqualsNonStreamedAndUsageCountsTheTokens()
    {
        var opts = Greedy(24);
        opts.IncludeLogProbabilities = true;
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Tell me a story")], opts);
        Assert.Equal(c.ContentTokenLogProbabilities.Count, c.Usage.OutputTokenCount);
        Assert.True(c.Usage.InputTokenCount > 0);
        Assert.Equal(c.Usage.InputTokenCount + c.Usage.OutputTokenCount, c.Usage.TotalTokenCount);
        if (c.FinishReason == ChatFinishReason.Length) Assert.Equal(24, c.Usage.OutputTokenCount);

        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var u in Chat().CompleteChatStreamingAsync([new UserChatMessage("Tell me a story")], Greedy(24)))
        {
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
            usage ??= u.Usage;
            finish ??= u.FinishReason;
        }
        Assert.Equal(c.Content[0].Text, text.ToString());
        Assert.Equal(c.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(c.Usage.OutputTokenCount, usage!.OutputTokenCount);
        Assert.Equal(c.Usage.InputTokenCount, usage.InputTokenCount);
    }

    [Fact]
    public async Task GreedyChoosesTheTopLogprobAndSeedsReproduce()
    {
        var opts = Greedy(12);
        opts.IncludeLogProbabilities = true;
        opts.TopLogProbabilityCount = 3;
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Hello")], opts);
        Assert.NotEmpty(c.ContentTokenLogProbabilities);
        foreach (var t in c.ContentTokenLogProbabilities)
        {
            Assert.Equal(3, t.TopLogProbabilities.Count);
            Assert.True(t.LogProbability <= 0);
            Assert.Equal(t.TopLogProbabilities.Max(x => x.LogProbability), t.LogProbability, 4);
        }

        var seeded = new ChatCompletionOptions { Temperature = 1.0f, Seed = 1234, MaxOutputTokenCount = 16 };
        string a = (await Chat().CompleteChatAsync([new UserChatMessage("Hello")], seeded)).Value.Content[0].Text;
        string b = (await Chat().CompleteChatAsync([new UserChatMessage("Hello")], seeded)).Value.Content[0].Text;
        Assert.Equal(a, b);
        var texts = new HashSet<string>();
        for (ulong s = 0; s < 4; s++)
            texts.Add((await Chat().CompleteChatAsync([new UserChatMessage("Hello")], new ChatCompletionOptions { Temperature = 1.0f, Seed = (long)s, MaxOutputTokenCount = 16 })).Value.Content[0].Text);
        Assert.True(texts.Count > 1, "four seeds gave one text: sampling ignores the seed");
    }

    [Fact]
    public async Task StopStringCutsTheGreedyTextAtItsFirstOccurrence()
    {
        string full = (await Chat().CompleteChatAsync([new UserChatMessage("Count with me")], Greedy(32))).Value.Content[0].Text;
        // A stop string taken from the middle of the greedy answer (any weights give some text).
        int at = full.Length / 2;
        Assert.True(full.Length >= 6, $"too little text to cut: '{full}'");
        string stop = full.Substring(at, 2);
        var opts = Greedy(32);
        opts.StopSequences.Add(stop);
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Count with me")], opts);
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], c.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, c.FinishReason);
    }

    [Fact]
    public async Task CompletionsWithNTwoStreamedAndNot()
    {
        var r = await PostAsync("v1/completions", """{"model":"demo","prompt":"Once upon a time","max_tokens":10,"temperature":0.8,"seed":7,"n":2,"logprobs":1}""");
        Assert.Equal(200, r.Status);
        using var doc = JsonDocument.Parse(r.Content);
        var choices = doc.RootElement.GetProperty("choices");
        Assert.Equal(2, choices.GetArrayLength());
        int tokens = 0;
        foreach (var ch in choices.EnumerateArray()) tokens += ch.GetProperty("logprobs").GetProperty("tokens").GetArrayLength();
        Assert.Equal(tokens, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var s = await PostAsync("v1/completions", """{"model":"demo","prompt":"Once upon a time","max_tokens":10,"temperature":0.8,"seed":7,"n":2,"stream":true,"stream_options":{"include_usage":true}}""");
        var events = LoomTestServer.SseEvents(s.Content.ToString());
        Assert.Equal("[DONE]", events[^1]);
        var streamed = new StringBuilder[] { new(), new() };
        int? usage = null;
        foreach (var e in events[..^1])
        {
            using var chunk = JsonDocument.Parse(e);
            foreach (var ch in chunk.RootElement.GetProperty("choices").EnumerateArray())
                streamed[ch.GetProperty("index").GetInt32()].Append(ch.GetProperty("text").GetString());
            if (chunk.RootElement.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) usage = u.GetProperty("completion_tokens").GetInt32();
        }
        // Same seed: the streamed samples are the non-streamed ones.
        Assert.Equal(choices[0].GetProperty("text").GetString(), streamed[0].ToString());
        Assert.Equal(choices[1].GetProperty("text").GetString(), streamed[1].ToString());
        Assert.Equal(tokens, usage);
    }

    [Fact]
    public async Task MetricsReturnToIdleRightAfterRequestsFinish()
    {
        await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Chat().CompleteChatAsync([new UserChatMessage($"Request {i}")], Greedy(8))));
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Bearer", RealModelServer.Key);
        string metrics = await http.GetStringAsync("metrics");
        Assert.Equal(0, Gauge(metrics, "vllm:num_requests_running"));
        Assert.Equal(0, Gauge(metrics, "vllm:num_requests_waiting"));
        Assert.Equal(0, Gauge(metrics, "vllm:kv_cache_usage_perc")); // finished requests hold no blocks (cached ones are free)
        Assert.True(Gauge(metrics, "vllm:generation_tokens_total") >= 6);
    }

    private static double Gauge(string metrics, string name)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal) && (l.Length == name.Length || l[name.Length] is ' ' or '{'))
            ?? throw new Xunit.Sdk.XunitException($"{name} missing from /metrics:\n{metrics}");
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task WrongApiKeyIs401()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat("sk-wrong").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(401, e.Status);
    }

    private Task<PipelineResponse> PostAsync(string path, string body) => SdkPipeline.PostAsync(Chat().Pipeline, server.BaseUri, path, body);
}

/// <summary>`loom serve`'s web host with an embedded silo on free loopback ports, serving the demo model.</summary>
public sealed class RealModelServer : IAsyncLifetime
{
    public const string Key = "sk-real";
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-real-").FullName;
    private WebApplication? _app;

    public Uri BaseUri { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var model = DemoModel.EnsureCreated(root: _dir);
        int http = TestHost.FreePort();
        var options = new LoomOptions
        {
            Model = new() { Path = model, Name = "demo" },
            Engine = new() { Threads = 1, KvCacheBytes = 32L * 1024 * 1024 },
            Cluster = new() { SiloPort = TestHost.FreePort(), GatewayPort = TestHost.FreePort(), ClusterId = "real-" + Guid.NewGuid().ToString("N")[..6] },
            Gateway = new() { Host = "127.0.0.1", HttpPort = http, GrpcPort = 0, ApiKeys = [Key] },
        };
        _app = LoomGatewayHosting.BuildWeb([], options);
        await _app.StartAsync();
        BaseUri = new Uri($"http://127.0.0.1:{http}/");
        // Ready once the worker has registered with the router.
        using var client = new HttpClient { BaseAddress = BaseUri };
        client.DefaultRequestHeaders.Authorization = new("Bearer", Key);
        // Loading (and here quantizing) takes seconds, many more on a loaded CI machine: wait up to two minutes.
        for (var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2); DateTime.UtcNow < deadline;)
        {
            using var r = await client.GetAsync("v1/models");
            if (r.IsSuccessStatusCode) return;
            await Task.Delay(100);
        }
        throw new TimeoutException("the embedded worker did not come up within two minutes");
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }

}
