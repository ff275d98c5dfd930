namespace Loom.Gateway.Tests.Tokenization;

/// <summary>The conversations every golden template is rendered with. Numbers are integers:
/// JS cannot tell 1.0 from 1, so float-valued inputs would compare a reference quirk, not Loom.</summary>
internal static class ChatTemplateConversations
{
    public sealed record Case(string Id, string Messages, bool AddGenerationPrompt, string? Tools = null, Dictionary<string, object> Extra = null!, bool ListContent = false)
    {
        public Dictionary<string, object> Extra { get; init; } = Extra ?? [];
    }

    private const string SystemUser = """
        [{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France?"}]
        """;

    private const string MultiTurn = """
        [{"role":"system","content":"Be brief."},{"role":"user","content":"Hi!"},{"role":"assistant","content":"Hello. How can I help?"},
         {"role":"user","content":"  Tell me a joke.\n"}]
        """;

    private const string Unicode = """
        [{"role":"user","content":"héllo 世界 🌍 \"quoted\" back\\slash\ttab <|fake|> {{ not jinja }}"},
         {"role":"assistant","content":"Ça va? 👍🏽 ñ"},{"role":"user","content":"日本語で答えて"}]
        """;

    private const string Tools = """
        [{"type":"function","function":{"name":"get_weather","description":"Get the weather for a city, in °C.",
          "parameters":{"type":"object","properties":{"city":{"type":"string","description":"City name, e.g. \"Paris\""},
          "days":{"type":"integer","minimum":1,"maximum":7}},"required":["city"]}}},
         {"type":"function","function":{"name":"search","description":"Web search","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":[]}}}]
        """;

    private const string ToolCallObjectArgs = """
        [{"role":"system","content":"Use tools."},{"role":"user","content":"Weather in Zürich?"},
         {"role":"assistant","content":"","tool_calls":[{"type":"function","id":"call_1","function":{"name":"get_weather","arguments":{"city":"Zürich","days":2}}}]},
         {"role":"tool","tool_call_id":"call_1","content":"{\"temp\": 21}"},
         {"role":"assistant","content":"It is 21 °C."},{"role":"user","content":"And tomorrow?"}]
        """;

    private const string ToolCallStringArgs = """
        [{"role":"user","content":"Weather in Paris and Rome?"},
         {"role":"assistant","content":null,"tool_calls":[
            {"type":"function","id":"a","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
            {"type":"function","id":"b","function":{"name":"get_weather","arguments":"{\"city\": \"Rome\"}"}}]},
         {"role":"tool","tool_call_id":"a","content":"18"},{"role":"tool","tool_call_id":"b","content":"25"}]
        """;

    private const string Thinking = """
        [{"role":"user","content":"2+2?"},{"role":"assistant","content":"<think>\nSimple sum.\n</think>\n\n4"},
         {"role":"user","content":"3+3?"},{"role":"assistant","content":"<think>\nAgain.\n</think>\n\n6"}]
        """;

    private const string ListContent = """
        [{"role":"system","content":[{"type":"text","text":"Sys as parts."}]},
         {"role":"user","content":[{"type":"text","text":"Part one."},{"type":"text","text":" Part two."}]}]
        """;

    private const string NotAlternating = """
        [{"role":"user","content":"a"},{"role":"user","content":"b"}]
        """;

    public static readonly IReadOnlyList<Case> All =
    [
        new("system-user-gen", SystemUser, true),
        new("system-user-nogen", SystemUser, false),
        new("user-only", """[{"role":"user","content":"Hello"}]""", true),
        new("multi-turn", MultiTurn, true),
        new("multi-turn-nogen", MultiTurn, false),
        new("unicode", Unicode, true),
        new("tools-defined", SystemUser, true, Tools),
        new("tools-no-system", """[{"role":"user","content":"Search cats"}]""", true, Tools),
        new("tool-call-object-args", ToolCallObjectArgs, true, Tools),
        new("tool-call-string-args", ToolCallStringArgs, false, Tools),
        new("tool-call-string-args-gen", ToolCallStringArgs, true),
        new("thinking-history", Thinking, true),
        new("enable-thinking-false", SystemUser, true, Extra: new() { ["enable_thinking"] = false }),
        new("enable-thinking-true", SystemUser, true, Extra: new() { ["enable_thinking"] = true }),
        new("list-content", ListContent, true, ListContent: true),
        new("not-alternating", NotAlternating, true),
        new("empty", "[]", true),
    ];
}
