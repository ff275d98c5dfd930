using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Loom.Silo.Structured;

namespace Loom.Gateway.Structured;

/// <summary>
/// The tool-call formats of the chat templates Loom serves: how a model writes a call, how the
/// gateway parses it back (<see cref="ToolCallParser"/>) and the grammar that forces it (tool_choice
/// required or named, so the arguments always parse and validate against the tool's schema).
/// <list type="bullet">
/// <item>hermes (Hermes, Qwen2.5, Qwen3): <c>&lt;tool_call&gt;\n{"name": "f", "arguments": {...}}\n&lt;/tool_call&gt;</c>, one per call, separated by a newline;</item>
/// <item>llama3_json (Llama 3.x): <c>{"name": "f", "parameters": {...}}</c>, calls separated by "; ";</item>
/// <item>mistral: <c>[TOOL_CALLS][{"name": "f", "arguments": {...}}, ...]</c>.</item>
/// </list>
/// </summary>
public enum ToolCallFormat { Hermes, Llama3Json, Mistral }

public static class ToolCallFormats
{
    public static ToolCallFormat Parse(string name) => name.Replace('-', '_').ToLowerInvariant() switch
    {
        "hermes" or "qwen" or "qwen3" or "qwen2_5" => ToolCallFormat.Hermes,
        "llama3_json" or "llama3" or "llama" or "llama3_1" => ToolCallFormat.Llama3Json,
        "mistral" => ToolCallFormat.Mistral,
        _ => throw new ArgumentException($"model.tool_call_parser must be hermes, llama3_json or mistral; got '{name}'"),
    };

    /// <summary>The format named by model.tool_call_parser, else the one the chat template writes, else by architecture (Hermes by default).</summary>
    public static ToolCallFormat Detect(string? configured, string architecture, string? tokenizerConfigJson)
    {
        if (!string.IsNullOrEmpty(configured)) return Parse(configured);
        string t = tokenizerConfigJson ?? "";
        if (t.Contains("<tool_call>", StringComparison.Ordinal)) return ToolCallFormat.Hermes;
        if (t.Contains("[TOOL_CALLS]", StringComparison.Ordinal)) return ToolCallFormat.Mistral;
        if (t.Contains("<|python_tag|>", StringComparison.Ordinal) || t.Contains("ipython", StringComparison.Ordinal)) return ToolCallFormat.Llama3Json;
        if (architecture.StartsWith("Mistral", StringComparison.Ordinal)) return ToolCallFormat.Mistral;
        return ToolCallFormat.Hermes;
    }

    /// <summary>The key the format writes the arguments under.</summary>
    public static string ArgumentsKey(ToolCallFormat f) => f == ToolCallFormat.Llama3Json ? "parameters" : "arguments";

    /// <summary>
    /// A GBNF grammar whose outputs are exactly tool calls in <paramref name="format"/> to the callable
    /// tools of <paramref name="plan"/>, their arguments valid against each tool's schema; one call, or
    /// one or more when parallel_tool_calls is on.
    /// </summary>
    public static StructuredOutput ForcedCalls(ToolPlan plan, ToolCallFormat format) => Calls(plan, format, plan.Callable, optional: false);

    /// <summary>
    /// tool_choice auto with a strict tool, in the hermes format: free text that never contains
    /// "&lt;tool_call&gt;", then optionally calls; once the model opens a call, a strict tool's arguments
    /// follow its schema (the others' any JSON object). Null for the other formats (not constrained).
    /// </summary>
    public static StructuredOutput? StrictAutoCalls(ToolPlan plan, ToolCallFormat format) =>
        format == ToolCallFormat.Hermes && plan.Choice == ToolChoice.Auto && plan.Tools.Any(t => t.Strict)
            ? Calls(plan, format, plan.Tools, optional: true) : null;

    private static StructuredOutput Calls(ToolPlan plan, ToolCallFormat format, IEnumerable<ToolSpec> tools, bool optional)
    {
        var w = new GbnfWriter();
        var calls = new List<Pattern>();
        int i = 0;
        var anyObject = JsonSchemaCompiler.Compile("{\"type\":\"object\"}");
        foreach (var tool in tools)
        {
            string args = w.Add(optional && !tool.Strict ? anyObject : tool.Parameters, $"t{i++}");
            var obj = Pattern.Sequence(Pattern.Text($"{{\"name\": \"{tool.Name}\", \"{ArgumentsKey(format)}\": "), new RuleRef(args), Pattern.Text("}"));
            calls.Add(format == ToolCallFormat.Hermes ? Pattern.Sequence(Pattern.Text("<tool_call>\n"), obj, Pattern.Text("\n</tool_call>")) : obj);
        }
        w.Rule("call", Pattern.Either([.. calls]));
        var call = new RuleRef("call");
        string sep = format switch { ToolCallFormat.Hermes => "\n", ToolCallFormat.Llama3Json => "; ", _ => ", " };
        var list = plan.Parallel ? Pattern.Sequence(call, new Repeat(Pattern.Sequence(Pattern.Text(sep), call), 0, -1)) : call;
        var root = format == ToolCallFormat.Mistral ? Pattern.Sequence(Pattern.Text("[TOOL_CALLS]["), list, Pattern.Text("]")) : list;
        if (optional) root = Pattern.Sequence(TextWithout("<tool_call>"), Pattern.Optional(root));
        w.Rule("root", root);
        var spec = new StructuredOutput(StructuredOutputKind.Grammar, w.Text);
        StructuredRequests.Check(spec, "tools");
        return spec;
    }

    /// <summary>Any text that does not contain <paramref name="tag"/> (which must not overlap itself, as "&lt;tool_call&gt;" does not).</summary>
    private static Pattern TextWithout(string tag)
    {
        var first = CharSet.Single(tag[0]);
        // A proper prefix of the tag, and one that breaks off with a character that neither continues it nor restarts it.
        var prefixes = Enumerable.Range(1, tag.Length - 1).Select(k => Pattern.Text(tag[..k])).ToArray();
        var breaks = Enumerable.Range(1, tag.Length - 1)
            .Select(k => Pattern.Sequence(Pattern.Text(tag[..k]), Pattern.Class(CharSet.AllBut(tag[k], tag[0])))).ToArray();
        var item = Pattern.Either(Pattern.Class(first.Complement()), Pattern.Sequence(new Repeat(Pattern.Either(prefixes), 0, -1), Pattern.Either(breaks)));
        return Pattern.Sequence(new Repeat(item, 0, -1), new Repeat(Pattern.Either(prefixes), 0, -1));
    }
}
