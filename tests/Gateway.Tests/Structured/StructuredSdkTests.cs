// The OpenAI SDK marks seed experimental; using it is the point here.
#pragma warning disable OPENAI001
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using Json.Schema;
using Loom.Gateway.Tests.OpenAi;
using OpenAI;
using OpenAI.Chat;

namespace Loom.Gateway.Tests.Structured;

/// <summary>
/// The official OpenAI .NET SDK's structured-output and tool-call APIs against `loom serve` on the demo
/// model: a strict JSON-schema response format, a required function tool whose arguments validate
/// against its schema, streamed tool-call updates that concatenate to the non-streamed arguments,
/// and the tool result sent back as a ToolChatMessage.
/// </summary>
public sealed class StructuredSdkTests(RealModelServer server) : IClassFixture<RealModelServer>
{
    private ChatClient Chat => new("demo", new ApiKeyCredential(RealModelServer.Key),
        new OpenAIClientOptions { Endpoint = new Uri(server.BaseUri, "v1"), NetworkTimeout = TimeSpan.FromSeconds(90), RetryPolicy = new ClientRetryPolicy(0) });

    private const string Person = """{"type":"object","properties":{"name":{"type":"string","maxLength":10},"age":{"type":"integer","minimum":0,"maximum":99}},"required":["name","age"],"additionalProperties":false}""";
    private const string Weather = """{"type":"object","properties":{"city":{"type":"string","maxLength":12},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"],"additionalProperties":false}""";

    [Fact]
    public async Task StructuredJsonSchemaFormatThroughTheSdkValidates()
    {
        int valid = 0;
        for (long seed = 0; seed < 6; seed++)
        {
            var opts = new ChatCompletionOptions
            {
                Temperature = 1, Seed = seed, MaxOutputTokenCount = 120,
                ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(Person), jsonSchemaIsStrict: true),
            };
            ChatCompletion c = await Chat.CompleteChatAsync([new UserChatMessage("Who are you?")], opts);
            if (c.FinishReason != ChatFinishReason.Stop) continue;
            using var doc = JsonDocument.Parse(c.Content[0].Text);
            Assert.True(JsonSchema.FromText(Person).Evaluate(doc.RootElement).IsValid, c.Content[0].Text);
            valid++;
        }
        Assert.True(valid >= 3, $"{valid} of 6 finished");
    }

    [Fact]
    public async Task ToolCallRequiredFunctionThroughTheSdkStreamsAndRoundTrips()
    {
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather forecast", BinaryData.FromString(Weather), functionSchemaIsStrict: true);
        ChatCompletionOptions Options() => new()
        {
            Temperature = 1, Seed = 42, MaxOutputTokenCount = 160, Tools = { tool },
            ToolChoice = ChatToolChoice.CreateRequiredChoice(), AllowParallelToolCalls = false,
        };
        List<ChatMessage> messages = [new UserChatMessage("Weather in Paris?")];
        ChatCompletion c = await Chat.CompleteChatAsync(messages, Options());
        Assert.Equal(ChatFinishReason.ToolCalls, c.FinishReason);
        var call = Assert.Single(c.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.StartsWith("call_", call.Id);
        using (var args = JsonDocument.Parse(call.FunctionArguments.ToString()))
            Assert.True(JsonSchema.FromText(Weather).Evaluate(args.RootElement).IsValid, call.FunctionArguments.ToString());

        var streamed = new StringBuilder();
        string? name = null, id = null;
        ChatFinishReason? finish = null;
        await foreach (var u in Chat.CompleteChatStreamingAsync(messages, Options()))
        {
            foreach (var t in u.ToolCallUpdates)
            {
                name ??= t.FunctionName;
                id ??= t.ToolCallId;
                if (t.FunctionArgumentsUpdate is { } a && !a.ToMemory().IsEmpty) streamed.Append(a.ToString());
            }
            finish ??= u.FinishReason;
        }
        Assert.Equal("get_weather", name);
        Assert.NotNull(id);
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal(call.FunctionArguments.ToString(), streamed.ToString());

        // The tool's result goes back through the template and the conversation continues.
        messages.Add(new AssistantChatMessage(c));
        messages.Add(new ToolChatMessage(call.Id, "{\"forecast\": \"sunny\"}"));
        ChatCompletion after = await Chat.CompleteChatAsync(messages, new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 8, Tools = { tool } });
        Assert.True(after.Usage.InputTokenCount > c.Usage.InputTokenCount);
    }
}
