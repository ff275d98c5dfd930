using System.Text.Json;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Loom.Silo.Structured;

namespace Loom.Gateway.Structured;

/// <summary>
/// The structured-output fields of a request, as OpenAI and vLLM spell them, to one
/// <see cref="StructuredOutput"/>: response_format ({"type": "text" | "json_object" | "json_schema"}),
/// vLLM's structured_outputs ({"json" | "regex" | "choice" | "grammar" | "json_object"}) and its older
/// guided_json / guided_regex / guided_choice / guided_grammar. Each spec is compiled here once (no
/// vocabulary needed) so a bad or unsupported one is a 400 naming the field and the keyword.
/// </summary>
internal static class StructuredRequests
{
    private static readonly string[] Guided = ["guided_json", "guided_regex", "guided_choice", "guided_grammar"];

    public static StructuredOutput? Parse(JsonElement root)
    {
        var f = new JsonFields(root);
        var found = new List<(StructuredOutput Spec, string Param)>();
        if (f.Raw("response_format") is { } rf && ResponseFormat(rf) is { } a) found.Add((a, "response_format"));
        if (f.Raw("structured_outputs") is { ValueKind: not JsonValueKind.Null } so) found.Add((StructuredOutputs(so), "structured_outputs"));
        foreach (var g in Guided)
            if (f.Raw(g) is { ValueKind: not JsonValueKind.Null } v) found.Add((FromField(g["guided_".Length..], v, g), g));
        if (found.Count > 1)
            throw new InvalidRequestException($"Give one structured output, not several ({string.Join(", ", found.Select(x => x.Param))}).", found[1].Param);
        if (found.Count == 0) return null;
        Check(found[0].Spec, found[0].Param);
        return found[0].Spec;
    }

    /// <summary>Compiles the spec without a vocabulary; what does not compile is a 400 naming <paramref name="param"/> and the keyword.</summary>
    public static void Check(StructuredOutput spec, string param)
    {
        try { ConstraintCompiler.Check(spec); }
        catch (StructuredOutputException e) { throw new InvalidRequestException($"'{param}': {e.Message}.", param); }
    }

    private static StructuredOutput? ResponseFormat(JsonElement rf)
    {
        if (rf.ValueKind == JsonValueKind.Null) return null;
        if (rf.ValueKind != JsonValueKind.Object) throw JsonFields.TypeError("response_format", "an object", rf);
        var f = new JsonFields(rf, "'response_format'");
        switch (f.String("type"))
        {
            case "text": return null;
            case "json_object": return new StructuredOutput(StructuredOutputKind.JsonSchema, """{"type":"object"}""");
            case "json_schema":
                if (f.Raw("json_schema") is not { ValueKind: JsonValueKind.Object } js)
                    throw new InvalidRequestException("'response_format' of type json_schema needs a 'json_schema' object.", "response_format");
                if (js.TryGetProperty("schema", out var schema) && schema.ValueKind is JsonValueKind.Object or JsonValueKind.True)
                    return new StructuredOutput(StructuredOutputKind.JsonSchema, JsonText.Compact(schema));
                throw new InvalidRequestException("'response_format.json_schema.schema' is required and must be an object.", "response_format");
            case var t:
                throw new InvalidRequestException($"'response_format.type' must be text, json_object or json_schema; got '{t}'.", "response_format");
        }
    }

    private static StructuredOutput StructuredOutputs(JsonElement so)
    {
        if (so.ValueKind != JsonValueKind.Object) throw JsonFields.TypeError("structured_outputs", "an object", so);
        var set = so.EnumerateObject().Where(p => p.Value.ValueKind is not (JsonValueKind.Null or JsonValueKind.False)
            && p.Name is "json" or "regex" or "choice" or "grammar" or "json_object").ToList();
        foreach (var p in so.EnumerateObject())
            if (p.Name is not ("json" or "regex" or "choice" or "grammar" or "json_object" or "disable_any_whitespace" or "disable_additional_properties" or "whitespace_pattern"))
                throw new InvalidRequestException($"'structured_outputs.{p.Name}' is not supported (use json, regex, choice, grammar or json_object).", "structured_outputs");
        if (set.Count != 1)
            throw new InvalidRequestException("'structured_outputs' must set exactly one of json, regex, choice, grammar and json_object.", "structured_outputs");
        return FromField(set[0].Name, set[0].Value, "structured_outputs");
    }

    private static StructuredOutput FromField(string kind, JsonElement v, string param) => kind switch
    {
        "json" => v.ValueKind switch
        {
            JsonValueKind.Object or JsonValueKind.True => new(StructuredOutputKind.JsonSchema, JsonText.Compact(v)),
            JsonValueKind.String => new(StructuredOutputKind.JsonSchema, v.GetString()!),
            _ => throw JsonFields.TypeError(param, "a JSON schema (an object or its text)", v),
        },
        "json_object" => new(StructuredOutputKind.JsonSchema, """{"type":"object"}"""),
        "regex" => v.ValueKind == JsonValueKind.String ? new(StructuredOutputKind.Regex, v.GetString()!) : throw JsonFields.TypeError(param, "a regular expression string", v),
        "grammar" => v.ValueKind == JsonValueKind.String ? new(StructuredOutputKind.Grammar, v.GetString()!) : throw JsonFields.TypeError(param, "a GBNF grammar string", v),
        _ => v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
            ? new(StructuredOutputKind.Choice, JsonText.Compact(v))
            : throw JsonFields.TypeError(param, "an array of strings", v),
    };
}
