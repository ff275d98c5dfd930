using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Google.Protobuf;
using Loom.Gateway.Grpc.V1;

namespace Loom.Gateway.Tests.OpenAi;

public sealed class ApiKeyServerFixture : IAsyncLifetime
{
    public const string Key = "key-one";
    public LoomTestServer Server { get; private set; } = null!;
    /// <summary>For the gRPC port (requests ask for HTTP/2 exactly: h2c with prior knowledge).</summary>
    public HttpClient Http2 { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync() => Server = await LoomTestServer.StartAsync(o => o.ApiKeys = [Key, "key-two"]);

    public async Task DisposeAsync()
    {
        Http2.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// Issue 12, item 5: the API key is checked by the route, never by a header the client chooses.
/// Every protected HTTP route × key absent / wrong / right × every Content-Type (gRPC's included,
/// any case, or none), on the HTTP port and on the gRPC port; and every gRPC method on its port.
/// </summary>
public sealed class FaultApiKeyTests(ApiKeyServerFixture fixture) : IClassFixture<ApiKeyServerFixture>
{
    private LoomTestServer Server => fixture.Server;

    private static readonly string?[] ContentTypes =
        ["application/json", "application/grpc", "application/grpc+proto", "application/grpc-web", "text/plain", "Application/GRPC", null];

    private static readonly (string Method, string Path, string? Body)[] Routes =
    [
        ("GET", "v1/models", null),
        ("GET", "v1/models/test-model", null),
        ("POST", "v1/completions", """{"prompt":"hi","max_tokens":2}"""),
        ("POST", "v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}"""),
        ("POST", "tokenize", """{"prompt":"hi"}"""),
        ("POST", "detokenize", """{"tokens":[104,105]}"""),
    ];

    public static TheoryData<string, string, string?, string, string> HttpMatrix()
    {
        var data = new TheoryData<string, string, string?, string, string>();
        foreach (var (method, path, _) in Routes)
            foreach (string? ct in ContentTypes)
                foreach (string key in (string[])["absent", "wrong", "right"])
                    foreach (string port in (string[])["http", "grpc"])
                        data.Add(method + " " + path, ct ?? "none", null, key, port);
        return data;
    }

    [Theory]
    [MemberData(nameof(HttpMatrix))]
    public async Task Fault_HttpRoute_ChecksTheKey_WhateverTheContentType(string route, string contentType, string? unused, string key, string port)
    {
        _ = unused;
        var (method, path, body) = Routes.Single(r => r.Method + " " + r.Path == route);
        var baseUri = port == "http" ? Server.BaseUri : Server.GrpcUri;
        using var req = new HttpRequestMessage(new HttpMethod(method), new Uri(baseUri, path));
        if (port == "grpc") (req.Version, req.VersionPolicy) = (HttpVersion.Version20, HttpVersionPolicy.RequestVersionExact);
        if (body is not null || contentType != "none")
        {
            req.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body ?? ""));
            if (contentType != "none") req.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        if (key != "absent") req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key == "right" ? ApiKeyServerFixture.Key : "wrong");

        var client = port == "http" ? Server.Http : fixture.Http2;
        using var resp = await client.SendAsync(req);
        string text = await resp.Content.ReadAsStringAsync();
        if (key == "right")
        {
            Assert.True(resp.IsSuccessStatusCode, $"{route} [{contentType}] via {port}: {(int)resp.StatusCode} {text}");
        }
        else
        {
            Assert.True(resp.StatusCode == HttpStatusCode.Unauthorized, $"{route} [{contentType}] via {port} without a valid key: {(int)resp.StatusCode} {text}");
            ErrorShape.Assert(text, null);
            Assert.Contains("invalid_api_key", text);
        }
    }

    [Theory]
    [InlineData("health")]
    [InlineData("version")]
    [InlineData("metrics")]
    public async Task Fault_ProbeRoutes_StayOpen(string path)
    {
        using var resp = await Server.Http.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
    }

    public static TheoryData<string, string, string> GrpcMatrix()
    {
        var data = new TheoryData<string, string, string>();
        foreach (string method in (string[])["Models", "Generate"])
            foreach (string? ct in ContentTypes)
                foreach (string key in (string[])["absent", "wrong", "right"])
                    data.Add(method, ct ?? "none", key);
        return data;
    }

    /// <summary>
    /// Raw HTTP/2 gRPC calls, so the Content-Type can be anything. Without a valid key no call ever
    /// succeeds (grpc-status 0) or returns a message; with one, gRPC's content types succeed.
    /// </summary>
    [Theory]
    [MemberData(nameof(GrpcMatrix))]
    public async Task Fault_GrpcMethod_ChecksTheKey_OnItsPort(string method, string contentType, string key)
    {
        IMessage message = method == "Models"
            ? new ModelsRequest()
            : new GenerateRequest { Text = "hi", Sampling = new SamplingOptions { MaxTokens = 2 } };
        byte[] payload = message.ToByteArray();
        var frame = new byte[5 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);

        using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(Server.GrpcUri, "loom.v1.Generation/" + method))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        if (contentType != "none") req.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        req.Headers.TryAddWithoutValidation("te", "trailers");
        if (key != "absent") req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key == "right" ? ApiKeyServerFixture.Key : "wrong");

        using var resp = await fixture.Http2.SendAsync(req);
        byte[] body = await resp.Content.ReadAsByteArrayAsync();
        string? status = Header(resp, "grpc-status");
        bool grpcContentType = contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) && contentType != "application/grpc-web";
        string what = $"{method} [{contentType}] key {key}: HTTP {(int)resp.StatusCode}, grpc-status {status}, {body.Length} bytes";
        if (key == "right" && grpcContentType)
        {
            Assert.True(status == "0" && body.Length > 5, what);
            return;
        }
        Assert.True(status != "0", what);
        Assert.True(body.Length == 0, what); // not one response message
        if (key != "right" && grpcContentType) Assert.True(status == "16", what); // UNAUTHENTICATED
    }

    private static string? Header(HttpResponseMessage resp, string name) =>
        resp.TrailingHeaders.TryGetValues(name, out var t) ? t.First()
        : resp.Headers.TryGetValues(name, out var h) ? h.First()
        : null;
}
