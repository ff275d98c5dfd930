using System.Text.Json;

namespace Loom.Silo.Structured;

/// <summary>
/// A JSON Schema to a <see cref="Grammar"/> whose every output is valid against it. The subset
/// (docs/structured-outputs.md): type (object, array, string, number, integer, boolean, null, or a
/// list of them), properties, required, additionalProperties (false, true or a schema: extra
/// properties are never generated), enum, const, items, minItems/maxItems, anyOf/oneOf (oneOf's
/// branches are assumed disjoint), allOf of one schema, $ref to #/$defs or #/definitions (or # for
/// the root; recursion to depth <see cref="ByteNfa.MaxRecursion"/>), minLength/maxLength, pattern,
/// minimum/maximum/exclusiveMinimum/exclusiveMaximum for integers, and format date, time,
/// date-time, uuid and email. Annotations (title, description, default, examples, $schema, $id,
/// $comment, deprecated, readOnly, writeOnly) are accepted. Any other keyword is refused by name,
/// never ignored. Objects emit their properties in the schema's order, required ones always.
/// </summary>
public sealed class JsonSchemaCompiler
{
    private static readonly HashSet<string> Annotations =
        ["title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "strict"];

    private static readonly HashSet<string> Supported =
    [
        "type", "properties", "required", "additionalProperties", "enum", "const", "items", "minItems", "maxItems", "anyOf", "oneOf", "allOf",
        "$ref", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format",
    ];

    private readonly JsonElement _root;
    private readonly Grammar _grammar = new("root");

    private JsonSchemaCompiler(JsonElement root) => _root = root;

    public static Grammar Compile(string schemaJson)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(schemaJson); }
        catch (JsonException e) { throw new StructuredOutputException($"the schema is not valid JSON: {e.Message}"); }
        using (doc) return Compile(doc.RootElement);
    }

    public static Grammar Compile(JsonElement schema)
    {
        var c = new JsonSchemaCompiler(schema.Clone());
        c._grammar.Rules["root"] = c.Schema(c._root, "#");
        c._grammar.Rules["any"] = c.AnyValue();
        return c._grammar;
    }

    private static StructuredOutputException Unsupported(string keyword, string path, string? why = null) =>
        new($"the schema keyword '{keyword}' {why ?? "is not supported"} (at {path})", keyword);

    private Pattern Schema(JsonElement s, string path)
    {
        if (s.ValueKind == JsonValueKind.True) return new RuleRef("any");
        if (s.ValueKind == JsonValueKind.False) return Pattern.Nothing;
        if (s.ValueKind != JsonValueKind.Object) throw new StructuredOutputException($"a schema must be an object or a boolean (at {path})", "type");
        var keys = new HashSet<string>();
        foreach (var p in s.EnumerateObject())
        {
            if (!Supported.Contains(p.Name) && !Annotations.Contains(p.Name)) throw Unsupported(p.Name, path);
            keys.Add(p.Name);
        }
        var constraints = keys.Where(Supported.Contains).ToList();

        if (s.TryGetProperty("$ref", out var r))
        {
            if (constraints.Count > 1) throw Unsupported(constraints.First(k => k != "$ref"), path, "beside $ref is not supported");
            return Ref(r.GetString() ?? "", path);
        }
        foreach (string combinator in (ReadOnlySpan<string>)["anyOf", "oneOf", "allOf"])
        {
            if (!s.TryGetProperty(combinator, out var list)) continue;
            if (constraints.Count > 1) throw Unsupported(constraints.First(k => k != combinator), path, $"beside {combinator} is not supported");
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
                throw new StructuredOutputException($"'{combinator}' must be a non-empty array (at {path})", combinator);
            if (combinator == "allOf" && list.GetArrayLength() != 1) throw Unsupported("allOf", path, "with more than one schema is not supported");
            int i = 0;
            return Pattern.Either([.. list.EnumerateArray().Select(e => Schema(e, $"{path}/{combinator}/{i++}"))]);
        }
        if (s.TryGetProperty("const", out var constant)) return Pattern.Text(JsonText.Compact(constant));
        var types = Types(s, path);
        if (s.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
                throw new StructuredOutputException($"'enum' must be a non-empty array (at {path})", "enum");
            var kept = values.EnumerateArray().Where(v => types is null || types.Any(t => OfType(v, t))).Select(v => Pattern.Text(JsonText.Compact(v))).ToArray();
            if (kept.Length == 0) throw new StructuredOutputException($"no 'enum' value has the schema's type (at {path})", "enum");
            return Pattern.Either(kept);
        }
        types ??= Infer(keys);
        if (types.Count == 0) return new RuleRef("any");
        return Pattern.Either([.. types.Select(t => Typed(s, t, path))]);
    }

    private static List<string>? Types(JsonElement s, string path)
    {
        if (!s.TryGetProperty("type", out var t)) return null;
        var list = t.ValueKind switch
        {
            JsonValueKind.String => [t.GetString()!],
            JsonValueKind.Array => t.EnumerateArray().Select(e => e.GetString() ?? "").ToList(),
            _ => throw new StructuredOutputException($"'type' must be a string or an array of strings (at {path})", "type"),
        };
        foreach (var name in list)
            if (name is not ("object" or "array" or "string" or "number" or "integer" or "boolean" or "null"))
                throw new StructuredOutputException($"unknown type '{name}' (at {path})", "type");
        return list;
    }

    private static List<string> Infer(HashSet<string> keys)
    {
        if (keys.Overlaps(["properties", "required", "additionalProperties"])) return ["object"];
        if (keys.Overlaps(["items", "minItems", "maxItems"])) return ["array"];
        if (keys.Overlaps(["minLength", "maxLength", "pattern", "format"])) return ["string"];
        if (keys.Overlaps(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])) return ["integer"];
        return [];
    }

    private static bool OfType(JsonElement v, string type) => type switch
    {
        "object" => v.ValueKind == JsonValueKind.Object,
        "array" => v.ValueKind == JsonValueKind.Array,
        "string" => v.ValueKind == JsonValueKind.String,
        "number" => v.ValueKind == JsonValueKind.Number,
        "integer" => v.ValueKind == JsonValueKind.Number && v.TryGetDecimal(out var d) && d == decimal.Truncate(d),
        "boolean" => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
        _ => v.ValueKind == JsonValueKind.Null,
    };

    private Pattern Ref(string reference, string path)
    {
        if (reference == "#") return new RuleRef("root");
        string name;
        JsonElement target;
        if (reference.StartsWith("#/$defs/", StringComparison.Ordinal) && _root.TryGetProperty("$defs", out var defs)
            && defs.TryGetProperty(name = Unescape(reference["#/$defs/".Length..]), out target)) { }
        else if (reference.StartsWith("#/definitions/", StringComparison.Ordinal) && _root.TryGetProperty("definitions", out var defs2)
            && defs2.TryGetProperty(name = Unescape(reference["#/definitions/".Length..]), out target)) { }
        else throw new StructuredOutputException($"'$ref' must point into #/$defs or #/definitions of this schema; '{reference}' does not resolve (at {path})", "$ref");
        string rule = "def:" + name;
        if (!_grammar.Rules.ContainsKey(rule))
        {
            _grammar.Rules[rule] = Pattern.Nothing; // placeholder while its body (which may refer to itself) compiles
            _grammar.Rules[rule] = Schema(target, reference);
        }
        return new RuleRef(rule);
    }

    private static string Unescape(string pointer) => pointer.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);

    private Pattern Typed(JsonElement s, string type, string path)
    {
        void Only(string t, params string[] allowed)
        {
            foreach (var k in (ReadOnlySpan<string>)["properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])
                if (s.TryGetProperty(k, out _) && !allowed.Contains(k) && type == t && !OtherTypeUses(s, k))
                    throw Unsupported(k, path, $"does not apply to type '{t}'");
        }
        switch (type)
        {
            case "null": return JsonPatterns.Null;
            case "boolean": return JsonPatterns.Boolean;
            case "number":
                Only("number");
                return JsonPatterns.Number;
            case "integer":
            {
                Only("integer", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum");
                long lo = -JsonPatterns.IntegerBound, hi = JsonPatterns.IntegerBound;
                if (Long(s, "minimum", path) is { } min) lo = Math.Max(lo, min);
                if (Long(s, "exclusiveMinimum", path) is { } xmin) lo = Math.Max(lo, xmin + 1);
                if (Long(s, "maximum", path) is { } max) hi = Math.Min(hi, max);
                if (Long(s, "exclusiveMaximum", path) is { } xmax) hi = Math.Min(hi, xmax - 1);
                if (lo > hi) throw new StructuredOutputException($"no integer lies between the schema's minimum and maximum (at {path})", "minimum");
                return JsonPatterns.IntegerRange(lo, hi);
            }
            case "string":
                Only("string", "minLength", "maxLength", "pattern", "format");
                return StringSchema(s, path);
            case "array":
            {
                Only("array", "items", "minItems", "maxItems");
                int min = Int(s, "minItems", path) ?? 0, max = Int(s, "maxItems", path) ?? -1;
                if (max >= 0 && max < min) throw new StructuredOutputException($"maxItems is below minItems (at {path})", "maxItems");
                if (s.TryGetProperty("items", out var items) && items.ValueKind == JsonValueKind.Array)
                    throw Unsupported("items", path, "as an array (tuple form) is not supported; use one schema");
                var item = s.TryGetProperty("items", out items) ? Schema(items, path + "/items") : new RuleRef("any");
                var more = new Repeat(Pattern.Sequence(JsonPatterns.Comma, item), Math.Max(0, min - 1), max < 0 ? -1 : max - 1);
                var body = Pattern.Sequence(item, more);
                if (max == 0) body = Pattern.Nothing;
                return Pattern.Sequence(Pattern.Text("["), min == 0 ? Pattern.Optional(body) : body, Pattern.Text("]"));
            }
            default:
                Only("object", "properties", "required", "additionalProperties");
                return ObjectSchema(s, path);
        }
    }

    // A keyword of another listed type (e.g. minLength in {"type": ["string", "null"]}) is not an error for this one.
    private static bool OtherTypeUses(JsonElement s, string keyword) =>
        s.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.Array && t.GetArrayLength() > 1;

    private Pattern StringSchema(JsonElement s, string path)
    {
        int min = Int(s, "minLength", path) ?? 0, max = Int(s, "maxLength", path) ?? -1;
        if (max >= 0 && max < min) throw new StructuredOutputException($"maxLength is below minLength (at {path})", "maxLength");
        if (max > 10_000 || min > 10_000) throw Unsupported(max > 10_000 ? "maxLength" : "minLength", path, "above 10000 is not supported");
        bool lengths = s.TryGetProperty("minLength", out _) || s.TryGetProperty("maxLength", out _);
        if (s.TryGetProperty("pattern", out var pattern))
        {
            if (lengths) throw Unsupported(s.TryGetProperty("maxLength", out _) ? "maxLength" : "minLength", path, "together with 'pattern' is not supported");
            if (s.TryGetProperty("format", out _)) throw Unsupported("format", path, "together with 'pattern' is not supported");
            var body = RegexParser.Parse(pattern.GetString() ?? throw new StructuredOutputException($"'pattern' must be a string (at {path})", "pattern"));
            return Pattern.Sequence(Pattern.Text("\""), JsonPatterns.Escaped(body), Pattern.Text("\""));
        }
        if (s.TryGetProperty("format", out var format))
        {
            if (lengths) throw Unsupported(s.TryGetProperty("maxLength", out _) ? "maxLength" : "minLength", path, "together with 'format' is not supported");
            string f = format.GetString() ?? "";
            var body = JsonPatterns.Format(f) ?? throw new StructuredOutputException($"the schema keyword 'format' value '{f}' is not supported (supported: date, time, date-time, uuid, email) (at {path})", "format");
            return Pattern.Sequence(Pattern.Text("\""), body, Pattern.Text("\""));
        }
        return JsonPatterns.String(min, max);
    }

    private Pattern ObjectSchema(JsonElement s, string path)
    {
        var props = new List<(string Name, Pattern Value, bool Required)>();
        var required = new HashSet<string>();
        if (s.TryGetProperty("required", out var req))
        {
            if (req.ValueKind != JsonValueKind.Array) throw new StructuredOutputException($"'required' must be an array (at {path})", "required");
            foreach (var r in req.EnumerateArray()) required.Add(r.GetString() ?? "");
        }
        if (s.TryGetProperty("properties", out var properties))
        {
            if (properties.ValueKind != JsonValueKind.Object) throw new StructuredOutputException($"'properties' must be an object (at {path})", "properties");
            foreach (var p in properties.EnumerateObject())
                props.Add((p.Name, Schema(p.Value, $"{path}/properties/{p.Name}"), required.Contains(p.Name)));
        }
        foreach (var name in required)
            if (!props.Any(p => p.Name == name))
                throw Unsupported("required", path, $"names '{name}', which is not in 'properties'; that is not supported");
        var additional = s.TryGetProperty("additionalProperties", out var ap) ? ap : default;
        if (props.Count == 0 && additional.ValueKind != JsonValueKind.False)
        {
            // A free-form object: any keys, values of the additionalProperties schema (or anything).
            var value = additional.ValueKind == JsonValueKind.Object ? Schema(additional, path + "/additionalProperties") : new RuleRef("any");
            var member = Pattern.Sequence(JsonPatterns.String(0, -1), JsonPatterns.Colon, value);
            return Pattern.Sequence(Pattern.Text("{"), Pattern.Optional(Pattern.Sequence(member, new Repeat(Pattern.Sequence(JsonPatterns.Comma, member), 0, -1))), Pattern.Text("}"));
        }
        // rest[i][started]: properties i.. given whether one was written already (then a comma comes first).
        var rest = new Pattern[props.Count + 1, 2];
        rest[props.Count, 0] = rest[props.Count, 1] = Pattern.Empty;
        for (int i = props.Count - 1; i >= 0; i--)
        {
            var (name, value, isRequired) = props[i];
            var kv = Pattern.Sequence(Pattern.Text(JsonSerializer.Serialize(name, JsonText.Options)), JsonPatterns.Colon, value);
            for (int started = 0; started < 2; started++)
            {
                var write = Pattern.Sequence(started == 1 ? JsonPatterns.Comma : Pattern.Empty, kv, rest[i + 1, 1]);
                rest[i, started] = new Shared(isRequired ? write : Pattern.Either(write, rest[i + 1, started]));
            }
        }
        return Pattern.Sequence(Pattern.Text("{"), rest[0, 0], Pattern.Text("}"));
    }

    /// <summary>Any JSON value (free-form objects and arrays nest up to the recursion bound).</summary>
    private Pattern AnyValue()
    {
        var any = new RuleRef("any");
        var member = Pattern.Sequence(JsonPatterns.String(0, -1), JsonPatterns.Colon, any);
        var obj = Pattern.Sequence(Pattern.Text("{"), Pattern.Optional(Pattern.Sequence(member, new Repeat(Pattern.Sequence(JsonPatterns.Comma, member), 0, -1))), Pattern.Text("}"));
        var arr = Pattern.Sequence(Pattern.Text("["), Pattern.Optional(Pattern.Sequence(any, new Repeat(Pattern.Sequence(JsonPatterns.Comma, any), 0, -1))), Pattern.Text("]"));
        return Pattern.Either(obj, arr, JsonPatterns.String(0, -1), JsonPatterns.Number, JsonPatterns.Boolean, JsonPatterns.Null);
    }

    private static int? Int(JsonElement s, string key, string path)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i < 0)
            throw new StructuredOutputException($"'{key}' must be a non-negative integer (at {path})", key);
        return i;
    }

    private static long? Long(JsonElement s, string key, string path)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDecimal(out var d) || d != decimal.Truncate(d) || Math.Abs(d) > JsonPatterns.IntegerBound)
            throw new StructuredOutputException($"'{key}' must be an integer within ±{JsonPatterns.IntegerBound} (at {path}); bounds on non-integers are not supported", key);
        return (long)d;
    }
}
