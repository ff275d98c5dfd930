using System.Text;
using System.Text.Json;
using Loom.Gateway.Tests.OpenAi;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.Tests.Structured;

/// <summary>
/// Tool calls and structured outputs through the HTTP API over a scripted cluster: the response's
/// message.tool_calls and finish_reason, the exact streamed delta.tool_calls shape, what reaches the
/// worker (the forced-call grammar), and the 400s that name their parameter.
/// </summary>
public sealed class ToolCallApiTests
{
    private const string Tools = """
        [{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":20}},"required":["city"],"additionalProperties":false}}},
         {"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"],"additionalProperties":false},"strict":true}}]
        """;

    private const string Output = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>";

    private static string Body(string extra, bool stream = false) =>
        "{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":" + Tools + (stream ? ",\"stream\":true" : "") + extra + "}";

    [Fact]
    public async Task ToolCallResponsesCarryToolCallsAndStreamInOpenAisShape()
    {
        await using var server = await LoomTestServer.StartAsync();
        server.Cluster.Script = (_, _) => Output;
        var r = await server.PostOkAsync("v1/chat/completions", Body(""));
        var choice = r.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal("Let me check.", message.GetProperty("content").GetString());
        var calls = message.GetProperty("tool_calls");
        Assert.Equal(2, calls.GetArrayLength());
        Assert.StartsWith("call_", calls[0].GetProperty("id").GetString());
        Assert.Equal("function", calls[0].GetProperty("type").GetString());
        Assert.Equal("get_weather", calls[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("{\"city\": \"Paris\"}", calls[0].GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("{\"a\": 1, \"b\": 2}", calls[1].GetProperty("function").GetProperty("arguments").GetString());
        Assert.NotEqual(calls[0].GetProperty("id").GetString(), calls[1].GetProperty("id").GetString());
        Assert.Contains("get_weather", server.Template.LastToolsJson); // the tools went to the template

        using var resp = await server.PostJsonAsync("v1/chat/completions", Body("", stream: true));
        var events = LoomTestServer.SseEvents(await resp.Content.ReadAsStringAsync());
        var args = new Dictionary<int, StringBuilder>();
        var content = new StringBuilder();
        string? finish = null;
        foreach (var e in events[..^1])
        {
            using var chunk = JsonDocument.Parse(e);
            var ch = chunk.RootElement.GetProperty("choices")[0];
            var delta = ch.GetProperty("delta");
            if (delta.TryGetProperty("content", out var c)) content.Append(c.GetString());
            if (ch.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish = ch.GetProperty("finish_reason").GetString();
            if (!delta.TryGetProperty("tool_calls", out var tc)) continue;
            Assert.Equal(1, tc.GetArrayLength());
            var call = tc[0];
            int index = call.GetProperty("index").GetInt32();
            if (call.TryGetProperty("id", out var id))
            {
                // The opening piece: id, type and name, with empty arguments.
                Assert.StartsWith("call_", id.GetString());
                Assert.Equal("function", call.GetProperty("type").GetString());
                Assert.Equal(calls[index].GetProperty("function").GetProperty("name").GetString(), call.GetProperty("function").GetProperty("name").GetString());
                Assert.Equal("", call.GetProperty("function").GetProperty("arguments").GetString());
                Assert.False(args.ContainsKey(index));
                args[index] = new StringBuilder();
            }
            else
            {
                Assert.False(call.TryGetProperty("type", out _));
                Assert.False(call.GetProperty("function").TryGetProperty("name", out _));
                args[index].Append(call.GetProperty("function").GetProperty("arguments").GetString());
            }
        }
        Assert.Equal("tool_calls", finish);
        Assert.Equal("Let me check.", content.ToString());
        for (int i = 0; i < 2; i++) Assert.Equal(calls[i].GetProperty("function").GetProperty("arguments").GetString(), args[i].ToString());
    }

    [Fact]
    public async Task ToolCallRequiredAndNamedChoicesSendAGrammarAndNoneSendsNothing()
    {
        await using var server = await LoomTestServer.StartAsync();
        server.Cluster.Script = (_, _) => "plain answer";
        var r = await server.PostOkAsync("v1/chat/completions", Body(",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"add\"}}"));
        Assert.True(server.Cluster.Requests.TryDequeue(out var named));
        Assert.Equal(StructuredOutputKind.Grammar, named!.Sampling.Structured!.Kind);
        Assert.Contains("\\\"name\\\": \\\"add\\\"", named.Sampling.Structured.Text);
        Assert.DoesNotContain("get_weather", named.Sampling.Structured.Text);
        // Not a call: plain content, finish_reason stop.
        Assert.Equal("stop", r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("plain answer", r.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        await server.PostOkAsync("v1/chat/completions", Body(",\"tool_choice\":\"required\""));
        Assert.True(server.Cluster.Requests.TryDequeue(out var required));
        Assert.Contains("get_weather", required!.Sampling.Structured!.Text);
        await server.PostOkAsync("v1/chat/completions", Body(",\"tool_choice\":\"none\""));
        Assert.True(server.Cluster.Requests.TryDequeue(out var none));
        Assert.Null(none!.Sampling.Structured);
    }

    public static TheoryData<string, string, string> BadRequests => new()
    {
        { Body(",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}"), "tool_choice", "nope" },
        { Body(",\"tool_choice\":\"sometimes\""), "tool_choice", "sometimes" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"patternProperties\":{}}}}]}", "tools", "patternProperties" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\",\"minProperties\":1}}}}", "response_format", "minProperties" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"number\",\"minimum\":0.5}}}}", "response_format", "minimum" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"$ref\":\"#/$defs/missing\"}}}}", "response_format", "$ref" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}}", "response_format", "schema" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"yaml\"}}", "response_format", "yaml" },
        { "{\"prompt\":\"x\",\"structured_outputs\":{\"regex\":\"(a\"}}", "structured_outputs", "')'" },
        { "{\"prompt\":\"x\",\"structured_outputs\":{\"regex\":\"(?=a)b\"}}", "structured_outputs", "lookaround" },
        { "{\"prompt\":\"x\",\"structured_outputs\":{\"choice\":[]}}", "structured_outputs", "choice" },
        { "{\"prompt\":\"x\",\"structured_outputs\":{\"grammar\":\"root ::= item\"}}", "structured_outputs", "item" },
        { "{\"prompt\":\"x\",\"structured_outputs\":{\"json\":{\"type\":\"string\"},\"regex\":\"a\"}}", "structured_outputs", "exactly one" },
        { "{\"prompt\":\"x\",\"structured_outputs\":{\"json\":{\"type\":\"string\",\"format\":\"ipv4\"}}}", "structured_outputs", "ipv4" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task StructuredAndToolCallMistakesAre400sNamingTheParam(string body, string param, string mentioned)
    {
        await using var server = await LoomTestServer.StartAsync();
        string path = body.Contains("\"prompt\"") ? "v1/completions" : "v1/chat/completions";
        using var resp = await server.PostJsonAsync(path, body);
        string text = await resp.Content.ReadAsStringAsync();
        Assert.True(400 == (int)resp.StatusCode, text);
        using var doc = JsonDocument.Parse(text);
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(mentioned, error.GetProperty("message").GetString());
        Assert.True(server.Cluster.Requests.IsEmpty);
    }
}
