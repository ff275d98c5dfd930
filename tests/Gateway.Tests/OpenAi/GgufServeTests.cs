using Loom.Testing;
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using Loom.Gateway.Demo;
using Loom.Gateway.Hosting;
using Loom.Silo.Configuration;
using Loom.Silo.Models;
using Loom.Tools.Models;
using Microsoft.AspNetCore.Builder;
using OpenAI;
using OpenAI.Chat;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// `loom serve --model x.gguf` through the official OpenAI SDK: the demo model (GPT-2's real
/// tokenizer and chat template) written as one Q4_K_M GGUF file in a folder of its own, so the
/// tokenizer and template can only come from the file; streamed and non-streamed must agree.
/// </summary>
public sealed class GgufServeTests(GgufModelServer server) : IClassFixture<GgufModelServer>
{
    private OpenAIClientOptions Options => new() { Endpoint = new Uri(server.BaseUri, "v1"), NetworkTimeout = TimeSpan.FromSeconds(60), RetryPolicy = new ClientRetryPolicy(0) };

    private ChatClient Chat() => new(GgufModelServer.Name, new ApiKeyCredential("none"), Options);

    [Fact]
    public async Task GgufChatStreamedEqualsNonStreamed()
    {
        var opts = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 20 };
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Tell me a story")], opts);
        Assert.True(c.Usage.InputTokenCount > 3); // the template wrapped the message
        var text = new StringBuilder();
        await foreach (var u in Chat().CompleteChatStreamingAsync([new UserChatMessage("Tell me a story")], opts))
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
        Assert.Equal(c.Content[0].Text, text.ToString());
        Assert.NotEmpty(text.ToString());
    }

    [Fact]
    public async Task GgufCompletionsAndModelsList()
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        string models = await http.GetStringAsync("v1/models");
        Assert.Contains($"\"{GgufModelServer.Name}\"", models);
        var body = new StringContent($$"""{"model":"{{GgufModelServer.Name}}","prompt":"Once upon a time","max_tokens":8,"temperature":0}""", Encoding.UTF8, "application/json");
        using var r = await http.PostAsync("v1/completions", body);
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        Assert.Equal(8, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // The prompt is tokenized by the file's GPT-2 vocabulary, as the demo folder's tokenizer.json would.
        Assert.Equal(4, doc.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }
}

/// <summary>`loom serve`'s web host serving a Q4_K_M .gguf converted from the demo model.</summary>
public sealed class GgufModelServer : IAsyncLifetime
{
    public const string Name = "demo-q4_k_m";
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-gguf-serve-").FullName;
    private WebApplication? _app;

    public Uri BaseUri { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var demo = DemoModel.EnsureCreated(root: _dir);
        var folder = Path.Combine(_dir, "gguf");
        Directory.CreateDirectory(folder);
        var gguf = Path.Combine(folder, Name + ".gguf");
        var config = ModelConfig.Load(demo);
        // The demo folder names a seed instead of holding weights; its tokenizer goes into the file.
        using (var w = SeededWeights.TryOpen(demo, config) ?? throw new InvalidOperationException("the demo model has no seed marker"))
            GgufModelWriter.Write(config, w, demo, gguf, GgufType.Q4_K_M, Name);
        int http = TestHost.FreePort();
        var options = new LoomOptions
        {
            Model = new() { Path = gguf },
            Engine = new() { Threads = 1, KvCacheBytes = 32L * 1024 * 1024 },
            Cluster = new() { SiloPort = TestHost.FreePort(), GatewayPort = TestHost.FreePort(), ClusterId = "gguf-" + Guid.NewGuid().ToString("N")[..6] },
            Gateway = new() { Host = "127.0.0.1", HttpPort = http, GrpcPort = 0 },
        };
        _app = LoomGatewayHosting.BuildWeb([], options);
        await _app.StartAsync();
        BaseUri = new Uri($"http://127.0.0.1:{http}/");
        using var client = new HttpClient { BaseAddress = BaseUri };
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
