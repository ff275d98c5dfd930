using System.Text.Json;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// Typed reads from a request's JSON object, each failing with a 400 that names the field and
/// what was expected. A JSON null is read as "absent", as OpenAI's and vLLM's servers do.
/// Hand-written rather than a deserializer so every wrong type gets a precise message.
/// </summary>
internal readonly struct JsonFields
{
    private readonly JsonElement _obj;

    public JsonFields(JsonElement obj, string what = "request body")
    {
        if (obj.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest($"The {what} must be a JSON object, got {Describe(obj.ValueKind)}.");
        _obj = obj;
    }

    public JsonElement Root => _obj;

    public JsonElement? Raw(string name) =>
        _obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string name)
    {
        if (Raw(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw TypeError(name, "a string", v);
    }

    public bool? Bool(string name)
    {
        if (Raw(name) is not { } v) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw TypeError(name, "a boolean", v),
        };
    }

    public float? Float(string name)
    {
        if (Raw(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d)) throw TypeError(name, "a number", v);
        if (!double.IsFinite(d) || Math.Abs(d) > float.MaxValue) throw ApiException.BadRequest($"'{name}' is out of range: {v.GetRawText()}.", name);
        return (float)d;
    }

    public int? Int(string name) => Raw(name) is { } v ? ReadInt(v, name) : null;

    public long? Long(string name)
    {
        if (Raw(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw TypeError(name, "an integer", v);
        if (v.TryGetInt64(out long l)) return l;
        if (v.TryGetUInt64(out ulong u)) return unchecked((long)u);
        throw ApiException.BadRequest($"'{name}' must be a 64-bit integer, got {v.GetRawText()}.", name);
    }

    public static int ReadInt(JsonElement v, string name)
    {
        if (v.ValueKind != JsonValueKind.Number) throw TypeError(name, "an integer", v);
        if (v.TryGetInt32(out int i)) return i;
        // Python clients sometimes send 16.0 for an int; accept integral values in range.
        if (v.TryGetDouble(out double d) && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue) return (int)d;
        throw ApiException.BadRequest($"'{name}' must be an integer in the 32-bit range, got {v.GetRawText()}.", name);
    }

    public static ApiException TypeError(string name, string expected, JsonElement got) =>
        ApiException.BadRequest($"'{name}' must be {expected}, got {Describe(got.ValueKind)}.", name);

    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };
}
