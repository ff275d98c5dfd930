using Loom.Silo.Configuration;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// A real Kestrel on 127.0.0.1 (port 0): HTTP/1.1 for the OpenAI API and a second, HTTP/2-only
/// port for gRPC, exactly as the host will run it, over a <see cref="FakeGenerationClient"/>.
/// </summary>
public sealed class LoomTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    public FakeGenerationClient Cluster { get; }
    /// <summary>Everything the server logged (at Information and above).</summary>
    public TestLogSink Logs { get; }
    public TestChatTemplate Template { get; } = new();
    public Uri BaseUri { get; }
    public Uri GrpcUri { get; }
    public HttpClient Http { get; }
    public IServiceProvider Services => _app.Services;

    private LoomTestServer(WebApplication app, FakeGenerationClient cluster, TestChatTemplate template, TestLogSink logs, int httpPort, int grpcPort)
    {
        _app = app;
        Logs = logs;
        Cluster = cluster;
        Template = template;
        BaseUri = new Uri($"http://127.0.0.1:{httpPort}/");
        GrpcUri = new Uri($"http://127.0.0.1:{grpcPort}/");
        Http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public static async Task<LoomTestServer> StartAsync(Action<LoomGatewayOptions>? configure = null, FakeGenerationClient? cluster = null, bool withTemplate = true,
        Loom.Gateway.Tokenization.ITokenizer? tokenizer = null)
    {
        cluster ??= new FakeGenerationClient();
        var template = new TestChatTemplate();
        var logs = new TestLogSink();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        ListenOptions? http = null, grpc = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l => { l.Protocols = HttpProtocols.Http1; http = l; });
            k.Listen(IPAddress.Loopback, 0, l => { l.Protocols = HttpProtocols.Http2; grpc = l; });
        });
        builder.Services.AddSingleton<IGenerationClient>(cluster);
        builder.Services.AddSingleton<IModelTextFactory>(new TestTextFactory(withTemplate ? template : null, tokenizer));
        builder.Services.AddLoomApi(configure);
        var app = builder.Build();
        app.MapLoomApi();
        await app.StartAsync();
        return new LoomTestServer(app, cluster, template, logs, http!.IPEndPoint!.Port, grpc!.IPEndPoint!.Port);
    }

    public Task<HttpResponseMessage> PostJsonAsync(string path, string json, string? apiKey = null, CancellationToken ct = default)
    {
        var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (apiKey is not null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return Http.SendAsync(req, ct);
    }

    public async Task<JsonElement> PostOkAsync(string path, string json)
    {
        using var resp = await PostJsonAsync(path, json);
        string body = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.IsSuccessStatusCode, $"{(int)resp.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>The data payloads of an SSE body, checking OpenAI's framing on the way.</summary>
    public static List<string> SseEvents(string body)
    {
        Assert.EndsWith("\n\n", body);
        var events = body[..^2].Split("\n\n");
        foreach (var e in events) Assert.StartsWith("data: ", e);
        return [.. events.Select(e => e["data: ".Length..])];
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
