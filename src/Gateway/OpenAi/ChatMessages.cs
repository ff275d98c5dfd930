using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// Validates OpenAI chat messages and rewrites them into the JSON the chat template renders:
/// content parts ([{"type":"text","text":...}]) are joined into one string, because model
/// templates index message['content'] as a string. Other fields (name, tool_calls,
/// tool_call_id, reasoning_content) pass through unchanged for templates that use them.
/// </summary>
internal static class ChatMessages
{
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool", "function"];

    public static string Normalize(JsonElement messages)
    {
        if (messages.ValueKind != JsonValueKind.Array) throw JsonFields.TypeError("messages", "an array", messages);
        if (messages.GetArrayLength() == 0) throw ApiException.BadRequest("'messages' must contain at least one message.", "messages");

        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            int i = 0;
            foreach (var m in messages.EnumerateArray())
            {
                string where = $"messages[{i++}]";
                var f = new JsonFields(m, $"'{where}'");
                string role = f.Raw("role") is { ValueKind: JsonValueKind.String } r ? r.GetString()!
                    : throw ApiException.BadRequest($"'{where}.role' is required and must be a string.", "messages");
                if (!Roles.Contains(role))
                    throw ApiException.BadRequest($"'{where}.role' must be one of {string.Join(", ", Roles)}; got '{role}'.", "messages");

                w.WriteStartObject();
                bool calls = m.TryGetProperty("tool_calls", out var tc) && tc.ValueKind == JsonValueKind.Array && tc.GetArrayLength() > 0;
                foreach (var prop in m.EnumerateObject())
                {
                    // Templates test and split content as a string (Qwen3's does): a tool-calling turn's null is "".
                    if (prop.NameEquals("content") && calls && prop.Value.ValueKind == JsonValueKind.Null) w.WriteString("content", "");
                    else if (prop.NameEquals("content"))
                    {
                        w.WritePropertyName("content");
                        WriteContent(w, prop.Value, role, where);
                    }
                    else if (prop.NameEquals("tool_calls") && prop.Value.ValueKind == JsonValueKind.Array)
                    {
                        w.WritePropertyName("tool_calls");
                        WriteToolCalls(w, prop.Value);
                    }
                    else prop.WriteTo(w);
                }
                if (!m.TryGetProperty("content", out _))
                {
                    // Only an assistant turn that calls tools may omit content.
                    if (role != "assistant") throw ApiException.BadRequest($"'{where}.content' is required.", "messages");
                    if (calls) w.WriteString("content", ""); else w.WriteNull("content");
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// Tool calls as templates render them (vLLM's rule): a function's arguments, JSON text on the wire,
    /// become the object they encode, so `arguments | tojson` writes JSON once, not a quoted string.
    /// </summary>
    private static void WriteToolCalls(Utf8JsonWriter w, JsonElement calls)
    {
        w.WriteStartArray();
        foreach (var call in calls.EnumerateArray())
        {
            if (call.ValueKind != JsonValueKind.Object) { call.WriteTo(w); continue; }
            w.WriteStartObject();
            foreach (var p in call.EnumerateObject())
            {
                if (!p.NameEquals("function") || p.Value.ValueKind != JsonValueKind.Object) { p.WriteTo(w); continue; }
                w.WritePropertyName("function");
                w.WriteStartObject();
                foreach (var fp in p.Value.EnumerateObject())
                {
                    if (fp.NameEquals("arguments") && fp.Value.ValueKind == JsonValueKind.String && TryParse(fp.Value.GetString()!) is { } args)
                    {
                        w.WritePropertyName("arguments");
                        args.WriteTo(w);
                    }
                    else fp.WriteTo(w);
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static JsonElement? TryParse(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone() : null;
        }
        catch (JsonException) { return null; }
    }

    private static void WriteContent(Utf8JsonWriter w, JsonElement content, string role, string where)
    {
        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                content.WriteTo(w);
                return;
            case JsonValueKind.Null when role == "assistant":
                w.WriteNullValue();
                return;
            case JsonValueKind.Array:
                var text = new StringBuilder();
                foreach (var part in content.EnumerateArray())
                {
                    var pf = new JsonFields(part, $"'{where}.content' part");
                    string? type = pf.String("type");
                    if (type != "text")
                        throw ApiException.BadRequest($"'{where}.content' part of type '{type}' is not supported; this model takes text only.", "messages");
                    text.Append(pf.String("text") ?? throw ApiException.BadRequest($"'{where}.content' text part needs 'text'.", "messages"));
                }
                w.WriteStringValue(text.ToString());
                return;
            default:
                throw ApiException.BadRequest($"'{where}.content' must be a string or an array of content parts, got {JsonFields.Describe(content.ValueKind)}.", "messages");
        }
    }
}
