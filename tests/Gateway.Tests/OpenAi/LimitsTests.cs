using Loom.Silo.Configuration;
using System.Net;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Loom.Gateway.Grpc.V1;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Serving;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>The test byte tokenizer, plus a BOS (id 257) when special tokens are added: makes add_special_tokens visible.</summary>
public sealed class BosByteTokenizer : ITokenizer
{
    private readonly ByteTokenizer _inner = new();
    public int VocabSize => _inner.VocabSize;
    public string? BosToken => "<|im_start|>";
    public string? EosToken => _inner.EosToken;
    public int[] Encode(string text, bool addSpecialTokens = false) => addSpecialTokens ? [ByteTokenizer.ImStart, .. _inner.Encode(text)] : _inner.Encode(text);
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true) => _inner.Decode(ids, skipSpecialTokens);
    public bool IsSpecial(int id) => _inner.IsSpecial(id);
    public int? TokenToId(string token) => _inner.TokenToId(token);
}

public sealed class LimitsServerFixture : IAsyncLifetime
{
    public LoomTestServer Server { get; private set; } = null!;
    public GrpcChannel Channel { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // A vocabulary of 1000 so 300 distinct logit_bias ids fit; the tokenizer still writes bytes.
        var cluster = new FakeGenerationClient { Info = new ModelInfo("test-model", "LlamaForCausalLM", 256, 1000, [ByteTokenizer.Eos], "{}", "{}") };
        Server = await LoomTestServer.StartAsync(cluster: cluster, tokenizer: new BosByteTokenizer());
        Channel = GrpcChannel.ForAddress(Server.GrpcUri);
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// Issue 12, item 4: every input limit at its edge (accepted) and one past it (a 400 naming the
/// parameter), over HTTP and gRPC alike, which share one validator and the same defaults.
/// </summary>
public sealed class LimitsTests(LimitsServerFixture fixture) : IClassFixture<LimitsServerFixture>
{
    private static readonly LoomGatewayOptions Defaults = new();
    private LoomTestServer Server => fixture.Server;
    private Generation.GenerationClient Grpc => new(fixture.Channel);

    [Fact]
    public void Limits_DefaultsAreTheDocumentedOnes()
    {
        // README "Limits" documents these numbers: change both together.
        Assert.Equal(128, Defaults.MaxChoicesPerRequest);
        Assert.Equal(16, Defaults.MaxStopStrings);
        Assert.Equal(256, Defaults.MaxStopStringLength);
        Assert.Equal(128, Defaults.MaxStopTokenIds);
        Assert.Equal(300, Defaults.MaxLogitBias);
        Assert.Equal(1024, Defaults.MaxConcurrentRequests);
        Assert.Equal(1024, new Loom.Silo.Configuration.LoomOptions().Gateway.MaxConcurrentRequests);
    }

    private static string Stops(int count, int length = 3) =>
        JsonSerializer.Serialize(Enumerable.Range(0, count).Select(i => ("§" + i).PadRight(length, 'q')[..length]));

    public static TheoryData<string, string, string?> HttpCases()
    {
        var d = new TheoryData<string, string, string?>();
        string Ids(int n) => JsonSerializer.Serialize(Enumerable.Range(0, n));
        string Bias(int n) => "{" + string.Join(",", Enumerable.Range(0, n).Select(i => $"\"{i}\":1")) + "}";
        // name, extra JSON fields, param of the 400 (null: accepted)
        d.Add("16 stop strings", $"\"stop\":{Stops(16)}", null);
        d.Add("17 stop strings", $"\"stop\":{Stops(17)}", "stop");
        d.Add("stop of 256 chars", $"\"stop\":{Stops(1, 256)}", null);
        d.Add("stop of 257 chars", $"\"stop\":{Stops(1, 257)}", "stop");
        d.Add("128 stop_token_ids", $"\"stop_token_ids\":{Ids(128)}", null);
        d.Add("129 stop_token_ids", $"\"stop_token_ids\":{Ids(129)}", "stop_token_ids");
        d.Add("100000 stop_token_ids", $"\"stop_token_ids\":{Ids(100_000)}", "stop_token_ids");
        d.Add("300 logit_bias", $"\"logit_bias\":{Bias(300)}", null);
        d.Add("301 logit_bias", $"\"logit_bias\":{Bias(301)}", "logit_bias");
        d.Add("logit_bias 100", "\"logit_bias\":{\"5\":100,\"6\":-100}", null);
        d.Add("logit_bias 100.5", "\"logit_bias\":{\"5\":100.5}", "logit_bias");
        d.Add("logit_bias out of vocab", "\"logit_bias\":{\"1000\":1}", "logit_bias");
        d.Add("logit_bias key not an id", "\"logit_bias\":{\"abc\":1}", "logit_bias");
        d.Add("logit_bias not an object", "\"logit_bias\":[1]", "logit_bias");
        d.Add("n 128", "\"n\":128", null);
        d.Add("n 129", "\"n\":129", "n");
        d.Add("n 2^31-1", "\"n\":2147483647", "n");
        return d;
    }

    [Theory]
    [MemberData(nameof(HttpCases))]
    public async Task Limits_Http_EdgeAcceptedAndOnePastIs400(string name, string fields, string? param)
    {
        foreach (string path in (string[])["v1/completions", "v1/chat/completions"])
        {
            string prompt = path == "v1/completions" ? "\"prompt\":\"hi\"" : "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
            using var resp = await Server.PostJsonAsync(path, "{" + prompt + ",\"max_tokens\":1," + fields + "}");
            string text = await resp.Content.ReadAsStringAsync();
            if (param is null)
            {
                Assert.True(resp.IsSuccessStatusCode, $"{name} on {path}: {(int)resp.StatusCode} {text}");
                continue;
            }
            Assert.True(resp.StatusCode == HttpStatusCode.BadRequest, $"{name} on {path}: {(int)resp.StatusCode} {text}");
            ErrorShape.Assert(text, param);
        }
    }

    [Fact]
    public async Task Limits_LogitBiasReachesTheEngineAsSortedTokenBiases()
    {
        while (fixture.Server.Cluster.Requests.TryDequeue(out _)) { }
        using var resp = await Server.PostJsonAsync("v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":1,\"logit_bias\":{\"7\":-100,\"5\":2.5}}");
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
        var sent = Assert.Single(fixture.Server.Cluster.Requests);
        Assert.Equal([new TokenBias(5, 2.5f), new TokenBias(7, -100f)], sent.Sampling.LogitBias);

        var r = new GenerateRequest { Text = "hi", Sampling = new SamplingOptions { MaxTokens = 1 } };
        r.Sampling.LogitBias[7] = -100f;
        r.Sampling.LogitBias[5] = 2.5f;
        using (var call = Grpc.Generate(r))
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
        Assert.Equal(sent.Sampling.LogitBias, fixture.Server.Cluster.Requests.Last().Sampling.LogitBias);
    }

    [Theory]
    [InlineData(2, 64, true)]
    [InlineData(2, 65, false)]
    [InlineData(128, 1, true)]
    [InlineData(129, 1, false)]
    public async Task Limits_Http_PromptsTimesN(int prompts, int n, bool ok)
    {
        string body = JsonSerializer.Serialize(new { prompt = Enumerable.Repeat("a", prompts).ToArray(), n, max_tokens = 1 });
        using var resp = await Server.PostJsonAsync("v1/completions", body);
        string text = await resp.Content.ReadAsStringAsync();
        if (ok) Assert.True(resp.IsSuccessStatusCode, text);
        else
        {
            Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
            ErrorShape.Assert(text, "n");
        }
    }

    [Fact]
    public void Limits_PromptsTimesN_IsCheckedIn64Bits()
    {
        // 2^25 prompts × n=128 is 2^32: in int it wrapped to 0 and passed. Too big to send, so the validator is called directly.
        var common = new CommonParams(null, 1, new SamplingParams { N = 128, MaxTokens = 1 }, [], false, false, true, false, null);
        var e = Assert.Throws<InvalidRequestException>(() => RequestValidator.Validate(common, 1 << 25, Defaults));
        Assert.Equal("n", e.Param);
        Assert.Contains("4294967296", e.Message);
        RequestValidator.Validate(common, 1, Defaults);
    }

    public static TheoryData<string, int, string?> GrpcCases() => new()
    {
        { "stop 16", 0, null }, { "stop 17", 1, "stop" },
        { "stop len 256", 2, null }, { "stop len 257", 3, "stop" },
        { "stop_token_ids 128", 4, null }, { "stop_token_ids 129", 5, "stop_token_ids" },
        { "n 128", 6, null }, { "n 129", 7, "n" },
        { "empty stop string", 8, "stop" },
        { "logit_bias 300", 9, null }, { "logit_bias 301", 10, "logit_bias" },
        { "logit_bias 100.5", 11, "logit_bias" }, { "logit_bias negative id", 12, "logit_bias" },
        { "logit_bias out of vocab", 13, "logit_bias" },
    };

    private static GenerateRequest GrpcCase(int i)
    {
        var r = new GenerateRequest { Text = "hi", Sampling = new SamplingOptions { MaxTokens = 1 } };
        switch (i)
        {
            case 0 or 1: r.Stop.AddRange(JsonSerializer.Deserialize<string[]>(Stops(16 + i))!); break;
            case 2 or 3: r.Stop.AddRange(JsonSerializer.Deserialize<string[]>(Stops(1, 256 + i - 2))!); break;
            case 4 or 5: r.Sampling.StopTokenIds.AddRange(Enumerable.Range(0, 128 + i - 4)); break;
            case 6 or 7: r.Sampling.N = 128 + i - 6; break;
            case 8: r.Stop.Add(""); break;
            case 9 or 10: foreach (int id in Enumerable.Range(0, 300 + i - 9)) r.Sampling.LogitBias[id] = 1f; break;
            case 11: r.Sampling.LogitBias[5] = 100.5f; break;
            case 12: r.Sampling.LogitBias[-1] = 1f; break;
            case 13: r.Sampling.LogitBias[1000] = 1f; break;
        }
        return r;
    }

    [Theory]
    [MemberData(nameof(GrpcCases))]
    public async Task Limits_Grpc_EdgeAcceptedAndOnePastIsInvalidArgument(string name, int index, string? param)
    {
        async Task<int> RunAsync()
        {
            using var call = Grpc.Generate(GrpcCase(index));
            int responses = 0;
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) responses++;
            return responses;
        }
        if (param is null)
        {
            Assert.True(await RunAsync() > 0, name);
            return;
        }
        var e = await Assert.ThrowsAsync<RpcException>(RunAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(param, e.Trailers.GetValue("param"));
    }

    /// <summary>gRPC used to default add_special_tokens to false (proto3's bool) where HTTP adds them.</summary>
    [Fact]
    public async Task Limits_GrpcAndHttp_GiveTheSameDefaults()
    {
        await Server.PostOkAsync("v1/completions", """{"prompt":"hi"}""");
        var http = Server.Cluster.Requests.Last();
        using (var call = Grpc.Generate(new GenerateRequest { Text = "hi" }))
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
        var grpc = Server.Cluster.Requests.Last();
        Assert.Equal([ByteTokenizer.ImStart, 'h', 'i'], http.PromptTokenIds);
        Assert.Equal(http.PromptTokenIds, grpc.PromptTokenIds);
        Assert.Equal(JsonSerializer.Serialize(http.Sampling), JsonSerializer.Serialize(grpc.Sampling));

        await Server.PostOkAsync("v1/completions", """{"prompt":"hi","add_special_tokens":false}""");
        Assert.Equal(['h', 'i'], Server.Cluster.Requests.Last().PromptTokenIds);
        using (var call = Grpc.Generate(new GenerateRequest { Text = "hi", AddSpecialTokens = false }))
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
        Assert.Equal(['h', 'i'], Server.Cluster.Requests.Last().PromptTokenIds);
    }

    public static TheoryData<string> Reserved() => [.. ApiRequests.ReservedTemplateVariables.Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Reserved))]
    public async Task Limits_TemplateKwargs_CannotReplaceReservedVariables(string name)
    {
        string kwargs = $"\"chat_template_kwargs\":{{\"{name}\":\"x\"}}";
        foreach (string path in (string[])["v1/chat/completions", "tokenize"])
        {
            using var resp = await Server.PostJsonAsync(path, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1," + kwargs + "}");
            string text = await resp.Content.ReadAsStringAsync();
            Assert.True(resp.StatusCode == HttpStatusCode.BadRequest, $"{name} on {path}: {(int)resp.StatusCode} {text}");
            ErrorShape.Assert(text, "chat_template_kwargs");
        }
    }

    [Fact]
    public async Task Limits_TemplateKwargs_OtherNamesStillReachTheTemplate()
    {
        await Server.PostOkAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}],"max_tokens":1,"chat_template_kwargs":{"enable_thinking":false,"Messages":1}}""");
        Assert.Equal(false, Server.Template.LastKwargs!["enable_thinking"]);
        // /tokenize now passes kwargs as the same plain values as chat (it passed JsonElements).
        var tok = await Server.PostOkAsync("tokenize", """{"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":{"enable_thinking":false}}""");
        Assert.Contains("<think>", Encoding.UTF8.GetString([.. tok.GetProperty("tokens").EnumerateArray().Select(t => (byte)Math.Min(t.GetInt32(), 255))]));
    }
}
