using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Loom.Gateway.Serving;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>OpenAI's error body: exactly {"error":{"message","type","param","code"}}.</summary>
public static class ErrorShape
{
    public static void Assert(string text, string? param)
    {
        using var doc = JsonDocument.Parse(text);
        var root = doc.RootElement;
        Xunit.Assert.Single(root.EnumerateObject());
        var e = root.GetProperty("error");
        Xunit.Assert.Equal(["message", "type", "param", "code"], e.EnumerateObject().Select(p => p.Name));
        Xunit.Assert.False(string.IsNullOrWhiteSpace(e.GetProperty("message").GetString()));
        Xunit.Assert.False(string.IsNullOrWhiteSpace(e.GetProperty("type").GetString()));
        if (param is not null) Xunit.Assert.Equal(param, e.GetProperty("param").GetString());
    }
}

public sealed class ErrorServerFixture : IAsyncLifetime
{
    public LoomTestServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await LoomTestServer.StartAsync(o => o.MaxBodyBytes = 64 * 1024);
    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Malformed and hostile requests: each gets the right status and OpenAI's error shape, and the
/// server stays healthy afterwards.
/// </summary>
public sealed class ErrorResponseTests(ErrorServerFixture fixture) : IClassFixture<ErrorServerFixture>
{
    private LoomTestServer Server => fixture.Server;

    private const string Chat = "v1/chat/completions";
    private const string Cmpl = "v1/completions";
    private const string Msg = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";

    public static TheoryData<string, string, string, int, string?> Cases => new()
    {
        // name, path, body, status, param
        { "bad json", Chat, """{"messages":""", 400, null },
        { "not an object", Chat, "[1,2]", 400, null },
        { "empty body", Chat, "", 400, null },
        { "json null", Chat, "null", 400, null },
        { "messages missing", Chat, "{}", 400, "messages" },
        { "messages empty", Chat, """{"messages":[]}""", 400, "messages" },
        { "messages a string", Chat, """{"messages":"hi"}""", 400, "messages" },
        { "unknown role", Chat, """{"messages":[{"role":"wizard","content":"hi"}]}""", 400, "messages" },
        { "role missing", Chat, """{"messages":[{"content":"hi"}]}""", 400, "messages" },
        { "message not object", Chat, """{"messages":[42]}""", 400, null },
        { "content a number", Chat, """{"messages":[{"role":"user","content":5}]}""", 400, "messages" },
        { "user content missing", Chat, """{"messages":[{"role":"user"}]}""", 400, "messages" },
        { "image part", Chat, """{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", 400, "messages" },
        { "temperature string", Chat, "{" + Msg + ""","temperature":"hot"}""", 400, "temperature" },
        { "temperature negative", Chat, "{" + Msg + ""","temperature":-1}""", 400, "temperature" },
        { "temperature 1e300", Chat, "{" + Msg + ""","temperature":1e300}""", 400, "temperature" },
        { "top_p zero", Chat, "{" + Msg + ""","top_p":0}""", 400, "top_p" },
        { "top_p above one", Chat, "{" + Msg + ""","top_p":1.5}""", 400, "top_p" },
        { "n zero", Chat, "{" + Msg + ""","n":0}""", 400, "n" },
        { "n huge", Chat, "{" + Msg + ""","n":100000}""", 400, "n" },
        { "max_tokens zero", Chat, "{" + Msg + ""","max_tokens":0}""", 400, "max_tokens" },
        { "max_tokens huge", Chat, "{" + Msg + ""","max_tokens":1000000}""", 400, "max_tokens" },
        { "max_tokens fraction", Chat, "{" + Msg + ""","max_tokens":1.5}""", 400, "max_tokens" },
        { "max_tokens overflow", Chat, "{" + Msg + ""","max_tokens":1e30}""", 400, "max_tokens" },
        { "max_completion_tokens bool", Chat, "{" + Msg + ""","max_completion_tokens":true}""", 400, "max_completion_tokens" },
        { "presence_penalty", Chat, "{" + Msg + ""","presence_penalty":3}""", 400, "presence_penalty" },
        { "frequency_penalty", Chat, "{" + Msg + ""","frequency_penalty":-3}""", 400, "frequency_penalty" },
        { "top_k", Chat, "{" + Msg + ""","top_k":-5}""", 400, "top_k" },
        { "min_p", Chat, "{" + Msg + ""","min_p":2}""", 400, "min_p" },
        { "repetition_penalty", Chat, "{" + Msg + ""","repetition_penalty":0}""", 400, "repetition_penalty" },
        { "min_tokens above max", Chat, "{" + Msg + ""","min_tokens":10,"max_tokens":5}""", 400, "min_tokens" },
        { "logprobs string", Chat, "{" + Msg + ""","logprobs":"yes"}""", 400, "logprobs" },
        { "top_logprobs alone", Chat, "{" + Msg + ""","top_logprobs":2}""", 400, "top_logprobs" },
        { "top_logprobs too many", Chat, "{" + Msg + ""","logprobs":true,"top_logprobs":50}""", 400, "top_logprobs" },
        { "stop a number", Chat, "{" + Msg + ""","stop":5}""", 400, "stop" },
        { "stop empty string", Chat, "{" + Msg + ""","stop":[""]}""", 400, "stop" },
        { "stop_token_ids negative", Chat, "{" + Msg + ""","stop_token_ids":[-1]}""", 400, "stop_token_ids" },
        { "seed a string", Chat, "{" + Msg + ""","seed":"abc"}""", 400, "seed" },
        { "stream a string", Chat, "{" + Msg + ""","stream":"yes"}""", 400, "stream" },
        { "stream_options not object", Chat, "{" + Msg + ""","stream":true,"stream_options":3}""", 400, null },
        { "template kwargs not object", Chat, "{" + Msg + ""","chat_template_kwargs":[1]}""", 400, "chat_template_kwargs" },
        { "template raises", Chat, """{"messages":[{"role":"user","content":"RAISE"}]}""", 400, "messages" },
        { "unknown model", Chat, "{" + Msg + ""","model":"gpt-4"}""", 404, "model" },
        { "deep nesting", Chat, new string('[', 200) + new string(']', 200), 400, null },
        { "prompt missing", Cmpl, "{}", 400, "prompt" },
        { "prompt empty list", Cmpl, """{"prompt":[]}""", 400, "prompt" },
        { "prompt object", Cmpl, """{"prompt":{"a":1}}""", 400, "prompt" },
        { "prompt fractional id", Cmpl, """{"prompt":[1.5]}""", 400, "prompt" },
        { "prompt id out of vocab", Cmpl, """{"prompt":[99999]}""", 400, "prompt" },
        { "prompt negative id", Cmpl, """{"prompt":[[1,-2]]}""", 400, "prompt" },
        { "prompt empty string", Cmpl, """{"prompt":""}""", 400, "prompt" },
        { "prompt over max_model_len", Cmpl, "{\"prompt\":\"" + new string('a', 300) + "\"}", 400, "prompt" },
        { "completions logprobs 30", Cmpl, """{"prompt":"a","logprobs":30}""", 400, "logprobs" },
        { "echo with logprobs", Cmpl, """{"prompt":"a","logprobs":1,"echo":true}""", 400, "echo" },
        { "suffix", Cmpl, """{"prompt":"a","suffix":"z"}""", 400, "suffix" },
        { "tokenize no prompt", "tokenize", "{}", 400, "prompt" },
        { "detokenize out of vocab", "detokenize", """{"tokens":[1,2,100000]}""", 400, "tokens" },
        { "detokenize tokens missing", "detokenize", "{}", 400, "tokens" },
        { "unknown route", "v1/nope", "{}", 404, null },
        { "unknown fields are ignored", Chat, "{" + Msg + ""","foo":1,"response_format":{"type":"text"}}""", 200, null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task HostileRequest_GetsStatusAndShape(string name, string path, string body, int status, string? param)
    {
        using var resp = await Server.PostJsonAsync(path, body);
        string text = await resp.Content.ReadAsStringAsync();
        Assert.True(status == (int)resp.StatusCode, $"{name}: expected {status}, got {(int)resp.StatusCode}: {text}");
        if (status != 200) ErrorShape.Assert(text, param);
        await AssertHealthyAsync();
    }

    private async Task AssertHealthyAsync()
    {
        using var health = await Server.Http.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task InvalidUtf8_Is400()
    {
        var bytes = Encoding.UTF8.GetBytes("{\"prompt\":\"ab").Concat(new byte[] { 0xC3, 0x28, 0xFF }).Concat(Encoding.UTF8.GetBytes("\"}")).ToArray();
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var resp = await Server.Http.PostAsync(Cmpl, content);
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        ErrorShape.Assert(await resp.Content.ReadAsStringAsync(), null);
        await AssertHealthyAsync();
    }

    [Fact]
    public async Task ContextOverflow_NamesTheLimit()
    {
        using var resp = await Server.PostJsonAsync(Cmpl, "{\"prompt\":\"" + new string('a', 300) + "\"}");
        var e = JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Contains("256", e.GetProperty("message").GetString());
        Assert.Equal("context_length_exceeded", e.GetProperty("code").GetString());
        using var resp2 = await Server.PostJsonAsync(Cmpl, """{"prompt":"abc","max_tokens":254}""");
        Assert.Contains("maximum context length is 256", await resp2.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task OversizeBody_Is413_WithAndWithoutContentLength()
    {
        string big = "{\"prompt\":\"" + new string('a', 100 * 1024) + "\"}";
        using var resp = await Server.PostJsonAsync(Cmpl, big);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, resp.StatusCode);
        ErrorShape.Assert(await resp.Content.ReadAsStringAsync(), null);

        // Chunked: no Content-Length to reject up front, so the limit applies while reading. Just
        // over the limit, so the client has sent everything before the server answers and closes
        // (a much larger body races the close and the client sees a reset instead of the 413).
        string justOver = "{\"prompt\":\"" + new string('a', 64 * 1024 + 100) + "\"}";
        using var chunked = new PushStreamContentLike(Encoding.UTF8.GetBytes(justOver));
        using var resp2 = await Server.Http.PostAsync(Cmpl, chunked);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, resp2.StatusCode);
        await AssertHealthyAsync();
    }

    [Fact]
    public async Task WrongMethod_Is405_InErrorShape()
    {
        using var resp = await Server.Http.GetAsync(Chat);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, resp.StatusCode);
        ErrorShape.Assert(await resp.Content.ReadAsStringAsync(), null);
    }

    [Fact]
    public async Task UnknownGetRoute_Is404_InErrorShape()
    {
        using var resp = await Server.Http.GetAsync("v1/engines");
        Assert.Equal(HttpStatusCode.NotFound, resp.StatusCode);
        ErrorShape.Assert(await resp.Content.ReadAsStringAsync(), null);
    }

    /// <summary>Content without a known length, so HttpClient sends it chunked.</summary>
    private sealed class PushStreamContentLike(byte[] data) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => stream.WriteAsync(data).AsTask();
        protected override bool TryComputeLength(out long length) { length = 0; return false; }
    }
}

/// <summary>Errors that come from the cluster: overload (503 + Retry-After), bad input, and the unexpected.</summary>
public sealed class ClusterErrorTests : IAsyncLifetime
{
    private LoomTestServer _server = null!;
    public async Task InitializeAsync() => _server = await LoomTestServer.StartAsync();
    public async Task DisposeAsync() => await _server.DisposeAsync();

    private const string Body = """{"messages":[{"role":"user","content":"hi"}]}""";
    private const string StreamBody = """{"messages":[{"role":"user","content":"hi"}],"stream":true}""";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Overloaded_Is503_WithRetryAfter(bool stream)
    {
        _server.Cluster.Throw = new OverloadedException("all workers full", TimeSpan.FromSeconds(2.5));
        using var resp = await _server.PostJsonAsync("v1/chat/completions", stream ? StreamBody : Body);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, resp.StatusCode);
        Assert.Equal("3", resp.Headers.RetryAfter!.ToString());
        ErrorShape.Assert(await resp.Content.ReadAsStringAsync(), null);
    }

    [Fact]
    public async Task ClusterInvalidRequest_Is400_WithParam()
    {
        _server.Cluster.Throw = new InvalidRequestException("too many for this worker", "max_tokens");
        using var resp = await _server.PostJsonAsync("v1/chat/completions", Body);
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        ErrorShape.Assert(await resp.Content.ReadAsStringAsync(), "max_tokens");
    }

    [Fact]
    public async Task Unexpected_Is500_WithoutLeakingInternals()
    {
        _server.Cluster.Throw = new InvalidOperationException("secret connection string Server=db;Password=hunter2");
        using var resp = await _server.PostJsonAsync("v1/chat/completions", Body);
        Assert.Equal(HttpStatusCode.InternalServerError, resp.StatusCode);
        string text = await resp.Content.ReadAsStringAsync();
        ErrorShape.Assert(text, null);
        Assert.DoesNotContain("hunter2", text);
        Assert.DoesNotContain("InvalidOperationException", text);
    }

    [Fact]
    public async Task WorkerStreamEndingEarly_Is500()
    {
        _server.Cluster.EndStreamEarly = true;
        using var resp = await _server.PostJsonAsync("v1/chat/completions", Body);
        Assert.Equal(HttpStatusCode.InternalServerError, resp.StatusCode);
    }

    [Fact]
    public async Task NoChatTemplate_Is400()
    {
        await using var server = await LoomTestServer.StartAsync(withTemplate: false);
        using var resp = await server.PostJsonAsync("v1/chat/completions", Body);
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        Assert.Contains("no chat template", await resp.Content.ReadAsStringAsync());
    }
}

/// <summary>API keys: /v1, /tokenize and /detokenize need one; probes and scrapes do not.</summary>
public sealed class ApiKeyTests : IAsyncLifetime
{
    private LoomTestServer _server = null!;
    public async Task InitializeAsync() => _server = await LoomTestServer.StartAsync(o => o.ApiKeys = ["key-one", "key-two"]);
    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData(null, 401)]
    [InlineData("wrong", 401)]
    [InlineData("key-one-but-longer", 401)]
    [InlineData("key-one", 200)]
    [InlineData("key-two", 200)]
    public async Task Chat_ChecksTheKey(string? key, int status)
    {
        using var resp = await _server.PostJsonAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""", key);
        Assert.Equal(status, (int)resp.StatusCode);
        if (status == 401)
        {
            string text = await resp.Content.ReadAsStringAsync();
            ErrorShape.Assert(text, null);
            Assert.Contains("invalid_api_key", text);
        }
    }

    [Fact]
    public async Task NonBearerScheme_Is401()
    {
        var req = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        req.Headers.Authorization = new AuthenticationHeaderValue("Basic", "a2V5LW9uZQ==");
        using var resp = await _server.Http.SendAsync(req);
        Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
    }

    [Theory]
    [InlineData("v1/models", 401)]
    [InlineData("health", 200)]
    [InlineData("metrics", 200)]
    [InlineData("version", 200)]
    public async Task OpenAndProtectedRoutes(string path, int status)
    {
        using var resp = await _server.Http.GetAsync(path);
        Assert.Equal(status, (int)resp.StatusCode);
    }

    [Fact]
    public async Task Tokenize_NeedsAKey()
    {
        using var resp = await _server.PostJsonAsync("tokenize", """{"prompt":"hi"}""");
        Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
        using var ok = await _server.PostJsonAsync("tokenize", """{"prompt":"hi"}""", "key-two");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }
}
