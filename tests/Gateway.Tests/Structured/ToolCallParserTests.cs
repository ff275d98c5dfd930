using Loom.Gateway.Templates;
using System.Text;
using System.Text.Json;
using Loom.Gateway.Structured;
using Loom.Gateway.Tests.Tokenization;
using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;
using Loom.Silo.Structured;

namespace Loom.Gateway.Tests.Structured;

/// <summary>
/// Each tool-call format against its family's chat template: the template renders an assistant turn
/// with tool calls (Qwen3's real template from npm; Llama 3.1-style and Mistral-style templates
/// written as Meta's and Mistral's render calls), the parser reads it back whole and in random
/// streamed pieces with the same calls, and the forced-call grammar accepts what the template wrote.
/// </summary>
public sealed class ToolCallParserTests
{
    private const string Messages = """
        [{"role":"user","content":"Weather in Paris and Tokyo?"},
         {"role":"assistant","content":null,"tool_calls":[
           {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\", \"units\": \"c\", \"days\": [1, 2]}"}},
           {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{\"zone\": \"Asia/Tokyo \\\"JST\\\" }{\"}"}}]},
         {"role":"tool","tool_call_id":"call_1","content":"18 degrees"},
         {"role":"tool","tool_call_id":"call_2","content":"09:00"}]
        """;

    private const string Tools = """
        [{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"units":{"enum":["c","f"]},"days":{"type":"array","items":{"type":"integer"}}},"required":["city"],"additionalProperties":false}}},
         {"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"],"additionalProperties":false}}}]
        """;

    private const string Llama3Template = """
        {%- for m in messages %}{%- if m.role == 'assistant' and m.tool_calls %}<|start_header_id|>assistant<|end_header_id|>

        {% for tc in m.tool_calls %}{{ '{"name": "' + tc.function.name + '", "parameters": ' + tc.function.arguments | tojson + '}' }}{% if not loop.last %}; {% endif %}{% endfor %}<|eot_id|>
        {%- elif m.role == 'tool' %}<|start_header_id|>ipython<|end_header_id|>

        {{ m.content }}<|eot_id|>{%- else %}<|start_header_id|>{{ m.role }}<|end_header_id|>

        {{ m.content }}<|eot_id|>{%- endif %}{%- endfor %}
        """;

    private const string MistralTemplate = """
        {%- for m in messages %}{%- if m.role == 'user' %}[INST] {{ m.content }}[/INST]{%- elif m.role == 'assistant' and m.tool_calls %}[TOOL_CALLS][{% for tc in m.tool_calls %}{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}{% if not loop.last %}, {% endif %}{% endfor %}]</s>{%- elif m.role == 'tool' %}[TOOL_RESULTS] {"content": {{ m.content | tojson }}, "call_id": "{{ m.tool_call_id }}"}[/TOOL_RESULTS]{%- endif %}{%- endfor %}
        """;

    private static (string CallText, string Rendered)? Render(string family)
    {
        string messages = NormalizeMessages(Messages);
        switch (family)
        {
            case "hermes":
            {
                var tok = StructuredVocabularies.TryGet("qwen3", out _);
                if (tok is null) return null;
                string? dir = NpmTokenizers.TryGetLenmlModel("qwen3", out _);
                var t = ChatTemplate.FromTokenizerConfig(File.ReadAllText(Path.Combine(dir!, "tokenizer_config.json")))!;
                string r = t.Render(messages, addGenerationPrompt: false, Tools);
                int start = r.LastIndexOf("<|im_start|>assistant\n", StringComparison.Ordinal) + "<|im_start|>assistant\n".Length;
                return (r[start..r.IndexOf("<|im_end|>", start, StringComparison.Ordinal)], r);
            }
            case "llama3":
            {
                string r = new ChatTemplate(Llama3Template).Render(messages, false, Tools);
                int start = r.IndexOf("assistant<|end_header_id|>\n\n", StringComparison.Ordinal) + "assistant<|end_header_id|>\n\n".Length;
                return (r[start..r.IndexOf("<|eot_id|>", start, StringComparison.Ordinal)], r);
            }
            default:
            {
                string r = new ChatTemplate(MistralTemplate).Render(messages, false, Tools);
                int start = r.IndexOf("[TOOL_CALLS]", StringComparison.Ordinal);
                return (r[start..r.IndexOf("</s>", start, StringComparison.Ordinal)], r);
            }
        }
    }

    // The gateway's own message normalization (arguments become objects for the template).
    private static string NormalizeMessages(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return Loom.Gateway.OpenAi.ChatMessages.Normalize(doc.RootElement);
    }

    public static TheoryData<string> Families => ["hermes", "llama3", "mistral"];

    private static ToolCallFormat Format(string family) => ToolCallFormats.Parse(family == "llama3" ? "llama3_json" : family);

    [SkippableTheory]
    [MemberData(nameof(Families))]
    public void ToolCallParserReadsItsTemplatesCallsWholeAndStreamed(string family)
    {
        var rendered = Render(family);
        Skip.If(rendered is null, "the qwen3 tokenizer package could not be fetched");
        var (text, full) = rendered!.Value;
        // The tool results made it through the template too.
        Assert.Contains("18 degrees", full);
        Assert.Contains("09:00", full);

        var whole = new ToolCallOutput(Format(family));
        var (content, _, finish) = whole.Next(text, "stop");
        var message = whole.Message();
        Assert.Equal("tool_calls", finish);
        Assert.True(string.IsNullOrWhiteSpace(message.Content), $"content: '{message.Content}'");
        Assert.Equal(2, message.ToolCalls!.Count);
        Assert.Equal(["get_weather", "get_time"], message.ToolCalls.Select(c => c.Function.Name));
        using (var a = JsonDocument.Parse(message.ToolCalls[0].Function.Arguments)) Assert.Equal("Paris", a.RootElement.GetProperty("city").GetString());
        using (var b = JsonDocument.Parse(message.ToolCalls[1].Function.Arguments)) Assert.Equal("Asia/Tokyo \"JST\" }{", b.RootElement.GetProperty("zone").GetString());
        Assert.All(message.ToolCalls, c => Assert.StartsWith("call_", c.Id));

        var rng = new Random(family.Length);
        for (int trial = 0; trial < 20; trial++)
        {
            var streamed = new ToolCallOutput(Format(family));
            var args = new Dictionary<int, StringBuilder>();
            var names = new Dictionary<int, string>();
            for (int at = 0; at < text.Length;)
            {
                int len = Math.Min(text.Length - at, rng.Next(1, 6));
                bool last = at + len == text.Length;
                var (_, calls, fin) = streamed.Next(text.Substring(at, len), last ? "stop" : null);
                foreach (var d in calls ?? [])
                {
                    if (d.Id is not null)
                    {
                        Assert.Equal("function", d.Type);
                        Assert.Equal("", d.Function.Arguments);
                        names[d.Index] = d.Function.Name!;
                        args[d.Index] = new StringBuilder();
                    }
                    else
                    {
                        Assert.Null(d.Function.Name);
                        args[d.Index].Append(d.Function.Arguments);
                    }
                }
                if (last) Assert.Equal("tool_calls", fin);
                at += len;
            }
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal(message.ToolCalls[i].Function.Name, names[i]);
                Assert.Equal(message.ToolCalls[i].Function.Arguments, args[i].ToString());
            }
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Families))]
    public void ToolCallForcedGrammarAcceptsWhatTheTemplateWrites(string family)
    {
        var rendered = Render(family);
        Skip.If(rendered is null, "the qwen3 tokenizer package could not be fetched");
        using var doc = JsonDocument.Parse($$"""{"tools":{{Tools}},"tool_choice":"required"}""");
        var plan = ToolRequests.Parse(doc.RootElement)!;
        var spec = ToolCallFormats.ForcedCalls(plan, Format(family));
        var dfa = new LazyDfa(new ByteNfa(ConstraintCompiler.ToGrammar(spec)), TokenVocabulary.ByteLevel(300));
        int state = dfa.Walk(dfa.Start, Encoding.UTF8.GetBytes(rendered!.Value.CallText));
        Assert.True(state != LazyDfa.Dead && dfa.IsAccepting(state), $"the {family} grammar rejects the template's calls: {rendered.Value.CallText}");
        // Without parallel calls, one call is the whole output.
        using var single = JsonDocument.Parse("{\"tools\":" + Tools + ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},\"parallel_tool_calls\":false}");
        var one = ToolCallFormats.ForcedCalls(ToolRequests.Parse(single.RootElement)!, Format(family));
        var dfa1 = new LazyDfa(new ByteNfa(ConstraintCompiler.ToGrammar(one)), TokenVocabulary.ByteLevel(300));
        Assert.Equal(LazyDfa.Dead, dfa1.Walk(dfa1.Start, Encoding.UTF8.GetBytes(rendered.Value.CallText)));
    }

    [Fact]
    public void ToolCallStrictToolUnderAutoIsConstrainedOnceACallOpens()
    {
        const string tools = """
            [{"type":"function","function":{"name":"add","strict":true,"parameters":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}}},
             {"type":"function","function":{"name":"note","parameters":{"type":"object","properties":{"text":{"type":"string"}}}}}]
            """;
        using var doc = JsonDocument.Parse("{\"tools\":" + tools + "}");
        var spec = ToolCallFormats.StrictAutoCalls(ToolRequests.Parse(doc.RootElement)!, ToolCallFormat.Hermes)!;
        var dfa = new LazyDfa(new ByteNfa(ConstraintCompiler.ToGrammar(spec)), TokenVocabulary.ByteLevel(300));
        bool Accepts(string text)
        {
            int st = dfa.Walk(dfa.Start, Encoding.UTF8.GetBytes(text));
            return st != LazyDfa.Dead && dfa.IsAccepting(st);
        }
        Assert.True(Accepts("Plain text <b>with</b> tags, <tool_cal and <<tool_"));
        Assert.True(Accepts("Let me add.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2}}\n</tool_call>"));
        Assert.True(Accepts("<tool_call>\n{\"name\": \"note\", \"arguments\": {\"text\": \"anything\", \"more\": [1]}}\n</tool_call>"));
        Assert.False(Accepts("<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": \"two\"}}\n</tool_call>"));
        Assert.False(Accepts("x <tool_call> free text"));
        // Without a strict tool, auto is not constrained.
        using var loose = JsonDocument.Parse("""{"tools":[{"type":"function","function":{"name":"note"}}]}""");
        Assert.Null(ToolCallFormats.StrictAutoCalls(ToolRequests.Parse(loose.RootElement)!, ToolCallFormat.Hermes));
    }
}
