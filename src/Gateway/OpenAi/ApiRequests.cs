using System.Collections.Frozen;
using System.Text.Json;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.OpenAi;

/// <summary>Parameters the completion and chat endpoints share (OpenAI's plus vLLM's extras).</summary>
internal sealed record CommonParams(
    string? Model,
    int? MaxTokens,
    SamplingParams Sampling,
    IReadOnlyList<string> Stop,
    bool Stream,
    bool IncludeUsage,
    bool SkipSpecialTokens,
    bool IncludeStopStrInOutput,
    string? User,
    bool? AddSpecialTokens = null);

/// <summary>One prompt of /v1/completions: text, or token ids as given.</summary>
internal sealed record PromptInput(string? Text, int[]? TokenIds);

internal sealed record CompletionRequest(CommonParams Common, IReadOnlyList<PromptInput> Prompts, bool Echo);

internal sealed record ChatRequest(
    CommonParams Common,
    string MessagesJson,
    string? ToolsJson,
    IReadOnlyDictionary<string, object?>? TemplateKwargs,
    bool AddGenerationPrompt,
    bool Logprobs);

/// <summary>
/// Turns request JSON into the records above, rejecting anything malformed with a 400. Types only:
/// values and limits are checked by <see cref="RequestValidator"/>, the path gRPC shares.
/// </summary>
internal static class ApiRequests
{
    public static CommonParams ParseCommon(JsonFields f, int? logprobs)
    {
        var stop = new List<string>();
        if (f.Raw("stop") is { } s)
        {
            if (s.ValueKind == JsonValueKind.String) stop.Add(s.GetString()!);
            else if (s.ValueKind == JsonValueKind.Array)
                foreach (var e in s.EnumerateArray())
                    stop.Add(e.ValueKind == JsonValueKind.String ? e.GetString()! : throw JsonFields.TypeError("stop", "a string or an array of strings", e));
            else throw JsonFields.TypeError("stop", "a string or an array of strings", s);
        }

        var stopIds = new List<int>();
        if (f.Raw("stop_token_ids") is { } ids)
        {
            if (ids.ValueKind != JsonValueKind.Array) throw JsonFields.TypeError("stop_token_ids", "an array of integers", ids);
            foreach (var e in ids.EnumerateArray()) stopIds.Add(JsonFields.ReadInt(e, "stop_token_ids"));
        }

        bool includeUsage = false;
        if (f.Raw("stream_options") is { } so)
            includeUsage = new JsonFields(so, "'stream_options'").Bool("include_usage") ?? false;

        // max_completion_tokens is OpenAI's newer name; it wins when both are given, as in vLLM.
        int? maxTokens = f.Int("max_completion_tokens") ?? f.Int("max_tokens");
        var defaults = new SamplingParams();
        var sampling = new SamplingParams
        {
            N = f.Int("n") ?? 1,
            Temperature = f.Float("temperature") ?? defaults.Temperature,
            TopP = f.Float("top_p") ?? defaults.TopP,
            TopK = f.Int("top_k") ?? 0,
            MinP = f.Float("min_p") ?? 0,
            PresencePenalty = f.Float("presence_penalty") ?? 0,
            FrequencyPenalty = f.Float("frequency_penalty") ?? 0,
            RepetitionPenalty = f.Float("repetition_penalty") ?? 1,
            Seed = f.Long("seed") is { } seed ? unchecked((ulong)seed) : null,
            MaxTokens = maxTokens ?? 1, // resolved against the prompt length later
            MinTokens = f.Int("min_tokens") ?? 0,
            StopTokenIds = stopIds,
            IgnoreEos = f.Bool("ignore_eos") ?? false,
            Logprobs = logprobs,
            Structured = Loom.Gateway.Structured.StructuredRequests.Parse(f.Root),
            LogitBias = ParseLogitBias(f),
        };

        return new CommonParams(
            f.String("model"), maxTokens, sampling, stop,
            f.Bool("stream") ?? false, includeUsage,
            f.Bool("skip_special_tokens") ?? true,
            f.Bool("include_stop_str_in_output") ?? false,
            f.String("user"),
            f.Bool("add_special_tokens"));
    }

    /// <summary>OpenAI's logit_bias: {"token id": bias}. Its size and values are checked by the validator.</summary>
    private static IReadOnlyList<TokenBias> ParseLogitBias(JsonFields f)
    {
        if (f.Raw("logit_bias") is not { } lb) return [];
        if (lb.ValueKind != JsonValueKind.Object) throw JsonFields.TypeError("logit_bias", "an object mapping token ids to numbers", lb);
        var bias = new Dictionary<int, float>();
        foreach (var p in lb.EnumerateObject())
        {
            if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id))
                throw new Serving.InvalidRequestException($"'logit_bias' keys must be token ids (non-negative integers), got '{Truncate(p.Name)}'.", "logit_bias");
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out double v) || !double.IsFinite(v))
                throw JsonFields.TypeError("logit_bias", "an object mapping token ids to numbers", p.Value);
            bias[id] = (float)Math.Clamp(v, -1e6, 1e6); // the validator names the real range
        }
        return TokenBias.Sorted(bias);
    }

    private static string Truncate(string s) => s.Length <= 32 ? s : s[..32] + "...";

    public static CompletionRequest ParseCompletion(JsonElement root)
    {
        var f = new JsonFields(root);
        var prompts = new List<PromptInput>();
        if (f.Raw("prompt") is not { } p) throw ApiException.BadRequest("'prompt' is required.", "prompt");
        switch (p.ValueKind)
        {
            case JsonValueKind.String: prompts.Add(new PromptInput(p.GetString(), null)); break;
            case JsonValueKind.Array when p.GetArrayLength() == 0:
                throw ApiException.BadRequest("'prompt' must not be empty.", "prompt");
            case JsonValueKind.Array:
                var first = p[0].ValueKind;
                if (first == JsonValueKind.Number) prompts.Add(new PromptInput(null, ReadIds(p)));
                else
                    foreach (var e in p.EnumerateArray())
                        prompts.Add(e.ValueKind switch
                        {
                            JsonValueKind.String => new PromptInput(e.GetString(), null),
                            JsonValueKind.Array => new PromptInput(null, ReadIds(e)),
                            _ => throw JsonFields.TypeError("prompt", "a string, an array of strings, an array of token ids or an array of such arrays", e),
                        });
                break;
            default:
                throw JsonFields.TypeError("prompt", "a string, an array of strings or token ids", p);
        }

        // OpenAI's legacy logprobs is an int (top alternatives per token), max 5; vLLM allows up to 20.
        int? logprobs = f.Int("logprobs");
        bool echo = f.Bool("echo") ?? false;
        if (echo && logprobs is not null)
            throw ApiException.BadRequest("'echo' together with 'logprobs' (prompt logprobs) is not supported.", "echo");
        // Insertion (suffix) is not supported, like vLLM; an empty or absent suffix is harmless.
        if (f.String("suffix") is { Length: > 0 }) throw ApiException.BadRequest("'suffix' is not supported.", "suffix");
        if (f.Int("best_of") is { } bestOf && bestOf != (f.Int("n") ?? 1))
            throw ApiException.BadRequest("'best_of' other than n is not supported.", "best_of");
        return new CompletionRequest(ParseCommon(f, logprobs), prompts, echo);
    }

    public static ChatRequest ParseChat(JsonElement root)
    {
        var f = new JsonFields(root);
        if (f.Raw("messages") is not { } messages) throw ApiException.BadRequest("'messages' is required.", "messages");
        string messagesJson = ChatMessages.Normalize(messages);

        bool logprobs = f.Bool("logprobs") ?? false;
        int? top = f.Int("top_logprobs");
        if (top is not null && !logprobs)
            throw ApiException.BadRequest("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs");
        if (top is < 0 or > SamplingParams.MaxLogprobs)
            throw ApiException.BadRequest($"'top_logprobs' must be in [0, {SamplingParams.MaxLogprobs}], got {top}.", "top_logprobs");

        string? toolsJson = null;
        if (f.Raw("tools") is { } tools)
            toolsJson = tools.ValueKind == JsonValueKind.Array ? tools.GetRawText() : throw JsonFields.TypeError("tools", "an array", tools);

        return new ChatRequest(ParseCommon(f, logprobs ? top ?? 0 : null), messagesJson, toolsJson, ParseTemplateKwargs(f),
            f.Bool("add_generation_prompt") ?? true, logprobs);
    }

    /// <summary>
    /// The variables the chat renderer sets itself (ChatTemplate.Render: messages, tools,
    /// add_generation_prompt and the tokenizer's special tokens) and the Jinja globals
    /// (JinjaGlobals). A kwarg of the same name would replace them after the messages and tools
    /// were validated, or a template's raise_exception, so such a kwarg is a 400.
    /// </summary>
    public static readonly FrozenSet<string> ReservedTemplateVariables = FrozenSet.ToFrozenSet(
    [
        "messages", "tools", "add_generation_prompt", "bos_token", "eos_token", "unk_token", "pad_token",
        "namespace", "raise_exception", "strftime_now", "range", "dict", "loop",
    ], StringComparer.Ordinal);

    /// <summary>chat_template_kwargs (chat and /tokenize alike): an object of extra template variables, none of them reserved.</summary>
    public static Dictionary<string, object?>? ParseTemplateKwargs(JsonFields f)
    {
        if (f.Raw("chat_template_kwargs") is not { } kw) return null;
        if (kw.ValueKind != JsonValueKind.Object) throw JsonFields.TypeError("chat_template_kwargs", "an object", kw);
        var kwargs = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var prop in kw.EnumerateObject())
        {
            if (ReservedTemplateVariables.Contains(prop.Name))
                throw new Serving.InvalidRequestException(
                    $"'chat_template_kwargs' must not set '{prop.Name}': the server sets it from the request (reserved: {string.Join(", ", ReservedTemplateVariables.Order(StringComparer.Ordinal))}).",
                    "chat_template_kwargs");
            kwargs[prop.Name] = ToPlain(prop.Value);
        }
        return kwargs;
    }

    private static int[] ReadIds(JsonElement arr)
    {
        var ids = new int[arr.GetArrayLength()];
        int i = 0;
        foreach (var e in arr.EnumerateArray())
            ids[i++] = e.ValueKind == JsonValueKind.Number ? JsonFields.ReadInt(e, "prompt") : throw JsonFields.TypeError("prompt", "token ids (integers)", e);
        if (ids.Length == 0) throw ApiException.BadRequest("'prompt' must not be empty.", "prompt");
        return ids;
    }

    /// <summary>Template kwargs as plain .NET values (bool, long, double, string, null; nested values stay JsonElement).</summary>
    private static object? ToPlain(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null => null,
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Number => v.TryGetInt64(out long l) ? l : v.GetDouble(),
        _ => v.Clone(),
    };
}
