using System.Net;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Loom.Gateway.Grpc.V1;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Serving;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// Issue 12, item 6: only deliberate request validation is a 4xx. Anything else (an
/// ArgumentException from deep inside included) is a 500 that is logged and whose message says
/// nothing internal: no exception text, no silo address, no worker error.
/// </summary>
public sealed class FaultErrorTests : IAsyncLifetime
{
    // What a worker or the cluster client might put in an exception: none of it may reach a client.
    private const string Secret = "silo S10.1.2.3:11111:987654 threw NullReferenceException in EngineLoop.Step";

    private LoomTestServer _server = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _server = await LoomTestServer.StartAsync();
        _channel = GrpcChannel.ForAddress(_server.GrpcUri);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    private const string Chat = """{"messages":[{"role":"user","content":"hi"}]}""";
    private const string ChatStream = """{"messages":[{"role":"user","content":"hi"}],"stream":true}""";
    private const string Cmpl = """{"prompt":"hi"}""";

    public static TheoryData<string> Faults => ["argument", "argument-out-of-range", "invalid-operation", "generation-failed", "worker-error-delta"];

    private void Inject(string fault)
    {
        var c = _server.Cluster;
        switch (fault)
        {
            case "argument": c.Throw = new ArgumentException(Secret, "max_tokens"); break;
            case "argument-out-of-range": c.Throw = new ArgumentOutOfRangeException("prompt", Secret); break;
            case "invalid-operation": c.Throw = new InvalidOperationException(Secret); break;
            // What OrleansGenerationClient throws after its resubmissions, with the last worker error in it.
            case "generation-failed": c.Throw = new GenerationFailedException("request r failed on 3 workers; last error: " + Secret); break;
            // A worker that reports an error on a running request (a delta with Error set).
            case "worker-error-delta": c.FailWith = Secret; break;
        }
    }

    private static void AssertInternal(string text)
    {
        ErrorShape.Assert(text, null);
        Assert.DoesNotContain("S10.1.2.3", text);
        Assert.DoesNotContain("NullReference", text);
        Assert.DoesNotContain("Exception", text);
        Assert.DoesNotContain("max_tokens", text); // an ArgumentException's param is internal too
        var e = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("server_error", e.GetProperty("type").GetString());
        Assert.Contains(ApiErrors.InternalMessage, e.GetProperty("message").GetString());
    }

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Fault_Internal_Is500_Generic_AndLogged(string fault)
    {
        Inject(fault);
        foreach (var (path, body) in new[] { ("v1/chat/completions", Chat), ("v1/completions", Cmpl) })
        {
            int logged = _server.Logs.Entries.Count(e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
            using var resp = await _server.PostJsonAsync(path, body);
            string text = await resp.Content.ReadAsStringAsync();
            Assert.True(resp.StatusCode == HttpStatusCode.InternalServerError, $"{fault} on {path}: {(int)resp.StatusCode} {text}");
            AssertInternal(text);
            // The detail goes to the log instead.
            Assert.Contains(_server.Logs.Entries.Skip(logged), e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Error
                && (e.Exception?.Message.Contains(Secret) == true || e.Exception?.Message.Contains("worker") == true));
        }
    }

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Fault_Internal_MidStream_IsAGenericErrorEvent(string fault)
    {
        Inject(fault);
        using var resp = await _server.PostJsonAsync("v1/chat/completions", ChatStream);
        string body = await resp.Content.ReadAsStringAsync();
        if (resp.StatusCode == HttpStatusCode.OK)
        {
            var events = LoomTestServer.SseEvents(body);
            Assert.Equal("[DONE]", events[^1]);
            AssertInternal(events[^2]);
        }
        else
        {
            // The failure came before the first token: an HTTP 500 rather than an event.
            Assert.Equal(HttpStatusCode.InternalServerError, resp.StatusCode);
            AssertInternal(body);
        }
        Assert.DoesNotContain("S10.1.2.3", body);
    }

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Fault_Internal_OverGrpc_IsInternal_Generic_AndLogged(string fault)
    {
        Inject(fault);
        var client = new Generation.GenerationClient(_channel);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = client.Generate(new GenerateRequest { Text = "hi", Sampling = new SamplingOptions { MaxTokens = 8 } });
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
        });
        Assert.Equal(StatusCode.Internal, e.StatusCode);
        Assert.DoesNotContain("S10.1.2.3", e.Status.Detail);
        Assert.DoesNotContain("Exception", e.Status.Detail);
        Assert.Null(e.Trailers.GetValue("param"));
        Assert.Contains(_server.Logs.Entries, l => l.Category.EndsWith("GenerationGrpcService", StringComparison.Ordinal) && l.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
    }

    [Fact]
    public async Task Fault_TemplateCrash_Is500_NotA400()
    {
        // raise_exception in a template is the user's conversation's fault (400); any other exception is ours.
        using var raise = await _server.PostJsonAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"RAISE"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, raise.StatusCode);
        using var crash = await _server.PostJsonAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"CRASH"}]}""");
        string text = await crash.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.InternalServerError, crash.StatusCode);
        Assert.DoesNotContain("0x7f3a", text);
        Assert.DoesNotContain("index", text);
        Assert.NotEmpty(_server.Logs.ErrorsWith<ArgumentOutOfRangeException>());
    }

    [Fact]
    public async Task Fault_ClusterInvalidRequest_StaysA400_WithItsParam()
    {
        // The cluster client's way to report worker-side validation (InvalidGenerationRequestException).
        _server.Cluster.Throw = new InvalidRequestException("max_tokens is more than this worker allows", "max_tokens");
        using var resp = await _server.PostJsonAsync("v1/completions", Cmpl);
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        ErrorShape.Assert(await resp.Content.ReadAsStringAsync(), "max_tokens");
        Assert.DoesNotContain(_server.Logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
    }

    [Theory]
    [InlineData("""{"prompt":"\ud800"}""")]
    [InlineData("""{"prompt":"a","stop":["\udc00"]}""")]
    [InlineData("""{"messages":[{"role":"user","content":"\ud800x"}]}""")]
    public async Task Fault_LoneSurrogateEscape_Is400(string body)
    {
        string path = body.Contains("messages") ? "v1/chat/completions" : "v1/completions";
        using var resp = await _server.PostJsonAsync(path, body);
        string text = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.StatusCode == HttpStatusCode.BadRequest, $"{(int)resp.StatusCode} {text}");
    }
}
