using Loom.Silo.Routing;
using Loom.Silo.Worker;
using Loom.Gateway.Tokenization;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Serving;
using System.Text.Json;

namespace Loom.Gateway.Templates;

/// <summary>
/// A model's chat template from tokenizer_config.json, parsed once and rendered per request the
/// way transformers' apply_chat_template does: messages, tools (None when absent),
/// add_generation_prompt, the special tokens, and extra kwargs such as enable_thinking.
/// </summary>
public sealed class ChatTemplate : IChatTemplate
{
    private readonly JinjaTemplate _default;
    private readonly JinjaTemplate? _toolUse;
    private readonly Dictionary<string, object?> _specialTokens;

    /// <param name="template">The Jinja source.</param>
    /// <param name="specialTokens">bos_token, eos_token, ... as plain strings.</param>
    /// <param name="toolUseTemplate">An alternative used when tools are given (tokenizer_config's "tool_use").</param>
    /// <exception cref="ChatTemplateException">A template does not parse.</exception>
    public ChatTemplate(string template, IReadOnlyDictionary<string, string?>? specialTokens = null, string? toolUseTemplate = null)
    {
        Source = template;
        _default = Parse(template, "chat_template");
        _toolUse = toolUseTemplate is null ? null : Parse(toolUseTemplate, "tool_use chat_template");
        _specialTokens = specialTokens?.ToDictionary(kv => kv.Key, kv => (object?)kv.Value) ?? [];
    }

    /// <summary>The Jinja source of the default template.</summary>
    public string Source { get; }

    public string? BosToken => _specialTokens.GetValueOrDefault("bos_token") as string;

    public string? EosToken => _specialTokens.GetValueOrDefault("eos_token") as string;

    /// <summary>The clock strftime_now reads (templates that stamp today's date); tests pin it.</summary>
    public Func<DateTime> Clock { get; init; } = () => DateTime.Now;

    /// <summary>Reads chat_template (a string, or a list of {name, template} where "default" is
    /// used and "tool_use" serves requests with tools) and the special tokens (a string or {content}).
    /// Returns null when the config has no chat template.</summary>
    /// <exception cref="ChatTemplateException">The config is not JSON or the template does not parse.</exception>
    public static ChatTemplate? FromTokenizerConfig(string tokenizerConfigJson)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(tokenizerConfigJson);
        }
        catch (JsonException e)
        {
            throw new ChatTemplateException("tokenizer_config.json is not valid JSON: " + e.Message, e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("chat_template", out var ct))
            {
                return null;
            }
            string? main = null, toolUse = null;
            if (ct.ValueKind == JsonValueKind.String)
            {
                main = ct.GetString();
            }
            else if (ct.ValueKind == JsonValueKind.Array)
            {
                foreach (var entry in ct.EnumerateArray())
                {
                    if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("name", out var n) && entry.TryGetProperty("template", out var t)
                        && t.ValueKind == JsonValueKind.String)
                    {
                        switch (n.GetString())
                        {
                            case "default": main = t.GetString(); break;
                            case "tool_use": toolUse = t.GetString(); break;
                        }
                    }
                }
                main ??= toolUse;
            }
            if (main is null)
            {
                return null;
            }
            var tokens = new Dictionary<string, string?>();
            foreach (string key in (string[])["bos_token", "eos_token", "unk_token", "pad_token"])
            {
                if (root.TryGetProperty(key, out var tok))
                {
                    tokens[key] = tok.ValueKind switch
                    {
                        JsonValueKind.String => tok.GetString(),
                        JsonValueKind.Object when tok.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
                        _ => null,
                    };
                }
            }
            return new ChatTemplate(main, tokens, toolUse == main ? null : toolUse);
        }
    }

    /// <exception cref="ChatTemplateException">Bad messages/tools JSON or a template error.</exception>
    public string Render(string messagesJson, bool addGenerationPrompt, string? toolsJson = null, IReadOnlyDictionary<string, object?>? extraKwargs = null)
    {
        var messages = ParseArray(messagesJson, "messages");
        var tools = toolsJson is null ? null : ParseArray(toolsJson, "tools");
        var vars = new Dictionary<string, object?>(_specialTokens)
        {
            ["messages"] = messages,
            ["tools"] = tools,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (extraKwargs is not null)
        {
            foreach (var (k, v) in extraKwargs)
            {
                vars[k] = v;
            }
        }
        var template = tools is { Count: > 0 } && _toolUse is not null ? _toolUse : _default;
        try
        {
            return template.Render(vars, Clock);
        }
        catch (JinjaException e)
        {
            throw new ChatTemplateException("Chat template error: " + e.Message, e);
        }
    }

    private static JinjaTemplate Parse(string source, string what)
    {
        try
        {
            return new JinjaTemplate(source);
        }
        catch (JinjaException e)
        {
            throw new ChatTemplateException($"Cannot parse the model's {what}: {e.Message}", e);
        }
    }

    private static List<object?> ParseArray(string json, string what)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw new ChatTemplateException($"{what} must be a JSON array");
            }
            return (List<object?>)JinjaValues.FromJson(doc.RootElement)!;
        }
        catch (JsonException e)
        {
            throw new ChatTemplateException($"{what} is not valid JSON: {e.Message}", e);
        }
    }
}
