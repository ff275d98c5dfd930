using System.Text.Json;
using System.Text.RegularExpressions;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Serving;
using Loom.Silo.Structured;

namespace Loom.Gateway.Structured;

/// <summary>One function the model may call: its name, its parameters' schema (compiled), whether strict.</summary>
public sealed record ToolSpec(string Name, string? ParametersJson, Grammar Parameters, bool Strict);

/// <summary>What tool_choice asks for.</summary>
public enum ToolChoice { None, Auto, Required, Named }

/// <summary>A chat request's tools: the functions, tool_choice (with the named function) and parallel_tool_calls.</summary>
public sealed record ToolPlan(IReadOnlyList<ToolSpec> Tools, ToolChoice Choice, string? Named, bool Parallel)
{
    /// <summary>Whether the output is parsed for tool calls at all.</summary>
    public bool Active => Choice != ToolChoice.None && Tools.Count > 0;

    /// <summary>Whether every output must be tool calls (so the arguments are constrained by their schemas).</summary>
    public bool Forced => Choice is ToolChoice.Required or ToolChoice.Named;

    /// <summary>The tools a forced output may call.</summary>
    public IEnumerable<ToolSpec> Callable => Choice == ToolChoice.Named ? Tools.Where(t => t.Name == Named) : Tools;
}

/// <summary>
/// OpenAI's tools, tool_choice and parallel_tool_calls, checked: tool names are unique identifiers,
/// each parameters schema compiles (a 400 on 'tools' naming the tool and the keyword otherwise),
/// and tool_choice names a tool that exists (a 400 on 'tool_choice').
/// </summary>
internal static partial class ToolRequests
{
    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex ToolName();

    public static ToolPlan? Parse(JsonElement root)
    {
        var f = new JsonFields(root);
        var tools = new List<ToolSpec>();
        if (f.Raw("tools") is { } list)
        {
            if (list.ValueKind != JsonValueKind.Array) throw JsonFields.TypeError("tools", "an array", list);
            int i = 0;
            foreach (var t in list.EnumerateArray()) tools.Add(Tool(t, i++));
            var dup = tools.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
            if (dup is not null) throw new InvalidRequestException($"'tools' names the function '{dup.Key}' twice.", "tools");
        }
        var choice = ToolChoice.None;
        string? named = null;
        if (f.Raw("tool_choice") is { } tc)
        {
            if (tc.ValueKind == JsonValueKind.String)
                choice = tc.GetString() switch
                {
                    "none" => ToolChoice.None,
                    "auto" => ToolChoice.Auto,
                    "required" => ToolChoice.Required,
                    var s => throw new InvalidRequestException($"'tool_choice' must be none, auto, required or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}; got '{s}'.", "tool_choice"),
                };
            else if (tc.ValueKind == JsonValueKind.Object && tc.TryGetProperty("function", out var fn) && fn.ValueKind == JsonValueKind.Object
                     && fn.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String)
            {
                choice = ToolChoice.Named;
                named = n.GetString();
                if (!tools.Any(t => t.Name == named))
                    throw new InvalidRequestException($"'tool_choice' names the function '{named}', which is not in 'tools'.", "tool_choice");
            }
            else throw JsonFields.TypeError("tool_choice", "a string or {\"type\": \"function\", \"function\": {\"name\": ...}}", tc);
            if (choice != ToolChoice.None && tools.Count == 0)
                throw new InvalidRequestException("'tool_choice' needs 'tools'.", "tool_choice");
        }
        else if (tools.Count > 0) choice = ToolChoice.Auto;
        if (tools.Count == 0 && choice == ToolChoice.None) return null;
        return new ToolPlan(tools, choice, named, f.Bool("parallel_tool_calls") ?? true);
    }

    private static ToolSpec Tool(JsonElement t, int i)
    {
        string where = $"tools[{i}]";
        if (t.ValueKind != JsonValueKind.Object) throw JsonFields.TypeError("tools", "an array of tool objects", t);
        var f = new JsonFields(t, $"'{where}'");
        if (f.String("type") is { } type && type != "function")
            throw new InvalidRequestException($"'{where}.type' must be 'function', got '{type}'.", "tools");
        if (f.Raw("function") is not { ValueKind: JsonValueKind.Object } fn)
            throw new InvalidRequestException($"'{where}.function' is required.", "tools");
        var ff = new JsonFields(fn, $"'{where}.function'");
        string name = ff.String("name") ?? throw new InvalidRequestException($"'{where}.function.name' is required.", "tools");
        if (!ToolName().IsMatch(name))
            throw new InvalidRequestException($"'{where}.function.name' must be 1 to 64 letters, digits, '_', '.' or '-'; got '{name}'.", "tools");
        string? parametersJson = null;
        Grammar parameters;
        try
        {
            if (ff.Raw("parameters") is { } p)
            {
                if (p.ValueKind != JsonValueKind.Object) throw JsonFields.TypeError("tools", "a JSON schema object for parameters", p);
                parametersJson = JsonText.Compact(p);
                parameters = JsonSchemaCompiler.Compile(p);
            }
            else parameters = JsonSchemaCompiler.Compile("""{"type":"object","properties":{},"additionalProperties":false}""");
        }
        catch (StructuredOutputException e)
        {
            throw new InvalidRequestException($"'{where}.function.parameters' ({name}): {e.Message}.", "tools");
        }
        return new ToolSpec(name, parametersJson, parameters, ff.Bool("strict") ?? false);
    }
}
