using System.Text.Json;
using System.Text.RegularExpressions;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>The streamed bytes, compared whole against what OpenAI sends (ids and timestamps normalised).</summary>
public sealed class SseFramingTests : IAsyncLifetime
{
    private LoomTestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await LoomTestServer.StartAsync();
        _server.Cluster.Script = (_, i) => i == 0 ? "Hi!" : "Yo";
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Normalise(string body) =>
        Regex.Replace(Regex.Replace(body, "\"id\":\"[a-z]+-[0-9a-f]{32}\"", "\"id\":\"ID\""), "\"created\":[0-9]+", "\"created\":0");

    [Fact]
    public async Task Chat_Stream_IsByteExact_WithRoleChunk_UsageChunk_AndDone()
    {
        using var resp = await _server.PostJsonAsync("v1/chat/completions",
            """{"model":"test-model","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}""");
        Assert.Equal("text/event-stream; charset=utf-8", resp.Content.Headers.ContentType!.ToString());
        Assert.Equal("no-cache", resp.Headers.CacheControl!.ToString());
        string body = Normalise(await resp.Content.ReadAsStringAsync());
        const string head = "data: {\"id\":\"ID\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"test-model\",\"choices\":[";
        const string tail = "\"system_fingerprint\":null}\n\n";
        string expected =
            head + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]," + tail +
            head + "{\"index\":0,\"delta\":{\"content\":\"H\"},\"logprobs\":null,\"finish_reason\":null}]," + tail +
            head + "{\"index\":0,\"delta\":{\"content\":\"i\"},\"logprobs\":null,\"finish_reason\":null}]," + tail +
            head + "{\"index\":0,\"delta\":{\"content\":\"!\"},\"logprobs\":null,\"finish_reason\":null}]," + tail +
            head + "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]," + tail +
            head + "],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":4,\"total_tokens\":24}," + tail +
            "data: [DONE]\n\n";
        Assert.Equal(expected, body);
    }

    [Fact]
    public async Task Chat_Stream_WithoutIncludeUsage_HasNoUsageChunk()
    {
        using var resp = await _server.PostJsonAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"x"}],"stream":true}""");
        var events = LoomTestServer.SseEvents(await resp.Content.ReadAsStringAsync());
        Assert.Equal("[DONE]", events[^1]);
        Assert.All(events[..^1], e => Assert.False(JsonDocument.Parse(e).RootElement.TryGetProperty("usage", out _)));
        Assert.Equal(6, events.Count); // role, H, i, !, finish, [DONE]
    }

    [Fact]
    public async Task Completions_Stream_IsByteExact()
    {
        using var resp = await _server.PostJsonAsync("v1/completions",
            """{"prompt":"x","max_tokens":2,"stream":true,"stream_options":{"include_usage":true}}""");
        string body = Normalise(await resp.Content.ReadAsStringAsync());
        const string head = "data: {\"id\":\"ID\",\"object\":\"text_completion\",\"created\":0,\"model\":\"test-model\",\"choices\":[";
        const string tail = "\"system_fingerprint\":null}\n\n";
        string expected =
            head + "{\"index\":0,\"text\":\"H\",\"logprobs\":null,\"finish_reason\":null}]," + tail +
            head + "{\"index\":0,\"text\":\"i\",\"logprobs\":null,\"finish_reason\":\"length\"}]," + tail +
            head + "],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}," + tail +
            "data: [DONE]\n\n";
        Assert.Equal(expected, body);
    }

    [Fact]
    public async Task Chat_Stream_N2_InterleavesChoices_EachOpenedByARoleChunk()
    {
        using var resp = await _server.PostJsonAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"x"}],"stream":true,"n":2}""");
        var events = LoomTestServer.SseEvents(await resp.Content.ReadAsStringAsync());
        var choices = events[..^1].Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].Clone()).ToList();
        Assert.Equal([0, 1], choices.Take(2).Select(c => c.GetProperty("index").GetInt32()));
        Assert.All(choices.Take(2), c => Assert.Equal("assistant", c.GetProperty("delta").GetProperty("role").GetString()));
        var order = choices.Skip(2).Select(c => c.GetProperty("index").GetInt32()).ToList();
        Assert.Equal([0, 1, 0, 1], order.Take(4)); // the worker interleaves samples and so does the stream
        string Text(int i) => string.Concat(choices.Skip(2).Where(c => c.GetProperty("index").GetInt32() == i)
            .Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.Equal("Hi!", Text(0));
        Assert.Equal("Yo", Text(1));
        Assert.Equal(2, choices.Count(c => c.GetProperty("finish_reason").ValueKind == JsonValueKind.String));
    }

    [Fact]
    public async Task MidStreamFailure_SendsAnErrorEvent_ThenDone()
    {
        _server.Cluster.FailWith = "worker lost";
        using var resp = await _server.PostJsonAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"x"}],"stream":true}""");
        var events = LoomTestServer.SseEvents(await resp.Content.ReadAsStringAsync());
        Assert.Equal("[DONE]", events[^1]);
        var error = JsonDocument.Parse(events[^2]).RootElement.GetProperty("error");
        // The worker's own text is logged, never sent (issue 12: a 500 says nothing internal).
        Assert.DoesNotContain("worker lost", error.GetProperty("message").GetString());
        Assert.Equal("generation_failed", error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
    }
}
