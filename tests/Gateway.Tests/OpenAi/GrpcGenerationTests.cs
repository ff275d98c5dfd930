using Grpc.Core;
using Grpc.Net.Client;
using Loom.Gateway.Grpc.V1;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>loom.v1.Generation over a real HTTP/2 port with Grpc.Net.Client.</summary>
public sealed class GrpcGenerationTests : IAsyncLifetime
{
    private LoomTestServer _server = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _server = await LoomTestServer.StartAsync(o => o.ApiKeys = ["k"]);
        _channel = GrpcChannel.ForAddress(_server.GrpcUri);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    private Generation.GenerationClient Client => new(_channel);
    private static Metadata Auth(string key = "k") => [new Metadata.Entry("authorization", "Bearer " + key)];

    [Fact]
    public async Task Models_ListsTheServedModel()
    {
        var r = await Client.ModelsAsync(new ModelsRequest(), Auth());
        Assert.Equal("test-model", Assert.Single(r.Models).Id);
        Assert.Equal(256, r.Models[0].MaxModelLen);
    }

    [Fact]
    public async Task Generate_Text_WithStopString_StreamsPiecesThenUsage()
    {
        var req = new GenerateRequest { Text = "ab", Sampling = new SamplingOptions { MaxTokens = 50, Logprobs = 0 }, Stop = { ", w" } };
        using var call = Client.Generate(req, Auth());
        var all = new List<GenerateResponse>();
        await foreach (var r in call.ResponseStream.ReadAllAsync()) all.Add(r);
        Assert.Equal("Hello", string.Concat(all.Select(r => r.Text)));
        Assert.Equal("stop", all[^2].FinishReason);
        Assert.Equal(8, all.Sum(r => r.TokenIds.Count));
        Assert.Equal(8, all.Sum(r => r.Logprobs.Count));
        Assert.Equal(2, all[^1].Usage.PromptTokens);
        Assert.Equal(8, all[^1].Usage.CompletionTokens);
        Assert.Equal(50, _server.Cluster.Requests.Last().Sampling.MaxTokens);
    }

    [Fact]
    public async Task Generate_TokenIds_N2()
    {
        var req = new GenerateRequest { TokenIds = new TokenIds { Ids = { 1, 2, 3 } }, Sampling = new SamplingOptions { MaxTokens = 3, N = 2, Seed = 7 } };
        using var call = Client.Generate(req, Auth());
        var all = new List<GenerateResponse>();
        await foreach (var r in call.ResponseStream.ReadAllAsync()) all.Add(r);
        Assert.Equal("Hel", string.Concat(all.Where(r => r.Index == 0 && r.Usage is null).Select(r => r.Text)));
        Assert.Equal("Sam", string.Concat(all.Where(r => r.Index == 1).Select(r => r.Text)));
        Assert.Equal([1, 2, 3], _server.Cluster.Requests.Last().PromptTokenIds);
        Assert.Equal(7UL, _server.Cluster.Requests.Last().Sampling.Seed);
    }

    [Fact]
    public async Task Errors_MapToGrpcStatuses()
    {
        var bad = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = Client.Generate(new GenerateRequest { Text = "a", Sampling = new SamplingOptions { TopP = 2 } }, Auth());
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Equal("top_p", bad.Trailers.GetValue("param"));

        var unknown = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = Client.Generate(new GenerateRequest { Model = "nope", Text = "a" }, Auth());
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);

        var auth = await Assert.ThrowsAsync<RpcException>(() => Client.ModelsAsync(new ModelsRequest(), Auth("wrong")).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, auth.StatusCode);

        _server.Cluster.Throw = new Loom.Gateway.Serving.OverloadedException("full", TimeSpan.FromSeconds(1));
        var busy = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = Client.Generate(new GenerateRequest { Text = "a" }, Auth());
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal(StatusCode.Unavailable, busy.StatusCode);
        Assert.Equal("1", busy.Trailers.GetValue("retry-after"));
    }

    [Fact]
    public async Task Cancel_AbortsTheWorkerRequest()
    {
        _server.Cluster.Script = (_, _) => new string('x', 200);
        _server.Cluster.TokenDelay = TimeSpan.FromMilliseconds(20);
        using var cts = new CancellationTokenSource();
        using var call = Client.Generate(new GenerateRequest { Text = "a", Sampling = new SamplingOptions { MaxTokens = 200 } }, Auth(), cancellationToken: cts.Token);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        await cts.CancelAsync();
        string id = _server.Cluster.Requests.Last().RequestId;
        for (int i = 0; i < 200 && !_server.Cluster.Cancelled.ContainsKey(id); i++) await Task.Delay(25);
        Assert.True(_server.Cluster.Cancelled.ContainsKey(id));
    }
}
