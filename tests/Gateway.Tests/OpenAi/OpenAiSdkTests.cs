// The OpenAI SDK marks seed and the legacy client experimental; using them is the point here.
#pragma warning disable OPENAI001
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// THE PROMISE: the official OpenAI .NET SDK, changed only in its endpoint (and key), works
/// against Loom: chat and completions, streamed and not, n=2, stop, logprobs, usage, seed,
/// and a wrong API key.
/// </summary>
public sealed class OpenAiSdkTests : IAsyncLifetime
{
    private const string Key = "sk-loom-test";
    private LoomTestServer _server = null!;

    public async Task InitializeAsync() => _server = await LoomTestServer.StartAsync(o => o.ApiKeys = [Key]);
    public async Task DisposeAsync() => await _server.DisposeAsync();

    private OpenAIClientOptions Options => new() { Endpoint = new Uri(_server.BaseUri, "v1"), NetworkTimeout = TimeSpan.FromSeconds(20), RetryPolicy = new ClientRetryPolicy(0) };
    private ChatClient Chat(string key = Key) => new("test-model", new ApiKeyCredential(key), Options);

    [Fact]
    public async Task Chat_NonStreaming()
    {
        ChatCompletion c = await Chat().CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("Say hello")]);
        Assert.Equal("Hello, world.", c.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, c.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, c.Role);
        Assert.Equal("test-model", c.Model);
        Assert.Equal(14, c.Usage.OutputTokenCount); // 13 bytes + EOS
        Assert.True(c.Usage.InputTokenCount > 0);
        Assert.Equal(c.Usage.InputTokenCount + c.Usage.OutputTokenCount, c.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task Chat_Streaming_WithUsage()
    {
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        var opts = new ChatCompletionOptions();
        await foreach (var u in Chat().CompleteChatStreamingAsync([new UserChatMessage("Say hello")], opts))
        {
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.Equal("Hello, world.", text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.NotNull(usage); // the SDK asks for stream_options.include_usage itself
        Assert.Equal(14, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Chat_StopSequence_MaxTokens_Seed_Logprobs()
    {
        var opts = new ChatCompletionOptions
        {
            StopSequences = { ", w" },
            Seed = 42,
            Temperature = 0.7f,
            TopP = 0.9f,
            FrequencyPenalty = 0.5f,
            PresencePenalty = 0.25f,
            IncludeLogProbabilities = true,
            TopLogProbabilityCount = 2,
            EndUserId = "user-1",
        };
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("hi")], opts);
        Assert.Equal("Hello", c.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, c.FinishReason);
        Assert.Equal(8, c.ContentTokenLogProbabilities.Count); // "Hello, w" = 8 tokens consumed
        Assert.Equal("H", c.ContentTokenLogProbabilities[0].Token);
        Assert.Equal(-0.25f, c.ContentTokenLogProbabilities[0].LogProbability);
        Assert.Equal(2, c.ContentTokenLogProbabilities[0].TopLogProbabilities.Count);
        var sent = _server.Cluster.Requests.Last().Sampling;
        Assert.Equal(42UL, sent.Seed);
        Assert.Equal(0.7f, sent.Temperature);
        Assert.Equal(0.9f, sent.TopP);
        Assert.Equal(0.5f, sent.FrequencyPenalty);
        Assert.Equal(0.25f, sent.PresencePenalty);
        Assert.Equal(2, sent.Logprobs);

        // Seed reproducibility: same request, same answer.
        ChatCompletion again = await Chat().CompleteChatAsync([new UserChatMessage("hi")], opts);
        Assert.Equal(c.Content[0].Text, again.Content[0].Text);

        ChatCompletion capped = await Chat().CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 4 });
        Assert.Equal("Hell", capped.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, capped.FinishReason);
    }

    [Fact]
    public async Task Chat_N2_ViaProtocolMethod()
    {
        // ChatCompletionOptions.N exists but is internal in 2.15; the SDK's protocol method sends the raw body.
        string body = """{"model":"test-model","messages":[{"role":"user","content":"hi"}],"n":2}""";
        ClientResult r = await Chat().CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(body)));
        using var doc = JsonDocument.Parse(r.GetRawResponse().Content);
        var choices = doc.RootElement.GetProperty("choices");
        Assert.Equal(2, choices.GetArrayLength());
        Assert.Equal("Hello, world.", choices[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("Sample 1 says hi.", choices[1].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(1, choices[1].GetProperty("index").GetInt32());
    }

    [Fact]
    public async Task WrongApiKey_Is401_ThroughTheSdk()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat("sk-wrong").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(401, e.Status);
        Assert.Contains("Incorrect API key", e.Message);
    }

    [Fact]
    public async Task UnknownModel_Is404_ThroughTheSdk()
    {
        var client = new ChatClient("no-such-model", new ApiKeyCredential(Key), Options);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, e.Status);
    }

    [Fact]
    public async Task Models_ListAndGet()
    {
        var client = new OpenAIModelClient(new ApiKeyCredential(Key), Options);
        OpenAIModelCollection models = await client.GetModelsAsync();
        Assert.Equal("test-model", Assert.Single(models).Id);
        OpenAIModel one = await client.GetModelAsync("test-model");
        Assert.Equal("loom", one.OwnedBy);
    }

    [Fact]
    public void N_IsPublicOnChatOptions()
    {
        // Documents why Chat_N2 uses the protocol method, should a later SDK make N public.
        Assert.Null(typeof(ChatCompletionOptions).GetProperty("N"));
    }

    private Task<PipelineResponse> SdkPostAsync(string path, string body) => SdkPipeline.PostAsync(Chat().Pipeline, _server.BaseUri, path, body);

    [Fact]
    public async Task Completions_StreamedAndNot_ThroughTheSdkPipeline()
    {
        var r = await SdkPostAsync("v1/completions", """{"model":"test-model","prompt":"Once","max_tokens":5,"logprobs":1,"n":2}""");
        Assert.Equal(200, r.Status);
        using var doc = JsonDocument.Parse(r.Content);
        var choices = doc.RootElement.GetProperty("choices");
        Assert.Equal("Hello", choices[0].GetProperty("text").GetString());
        Assert.Equal("Sampl", choices[1].GetProperty("text").GetString());
        Assert.Equal("length", choices[0].GetProperty("finish_reason").GetString());
        Assert.Equal(5, choices[0].GetProperty("logprobs").GetProperty("tokens").GetArrayLength());
        Assert.Equal(10, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var s = await SdkPostAsync("v1/completions", """{"model":"test-model","prompt":"Once","max_tokens":5,"stream":true}""");
        var events = LoomTestServer.SseEvents(s.Content.ToString());
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal("Hello", string.Concat(events[..^1].Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("text").GetString())));
    }
}
