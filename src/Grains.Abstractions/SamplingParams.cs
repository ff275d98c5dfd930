using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// Per-request sampling parameters with vLLM's meanings and defaults. Temperature 0 is greedy.
/// TopK &lt;= 0 disables top-k. Logprobs is the number of top alternatives to return with each
/// token (null: none). Seed makes sampling reproducible whatever else shares the batch.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record SamplingParams
{
    [Id(0)] public int N { get; init; } = 1;
    [Id(1)] public float Temperature { get; init; } = 1f;
    [Id(2)] public float TopP { get; init; } = 1f;
    [Id(3)] public int TopK { get; init; }
    [Id(4)] public float MinP { get; init; }
    [Id(5)] public float PresencePenalty { get; init; }
    [Id(6)] public float FrequencyPenalty { get; init; }
    [Id(7)] public float RepetitionPenalty { get; init; } = 1f;
    [Id(8)] public ulong? Seed { get; init; }
    [Id(9)] public int MaxTokens { get; init; } = 16;
    [Id(10)] public int MinTokens { get; init; }
    [Id(11)] public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    [Id(12)] public bool IgnoreEos { get; init; }
    [Id(13)] public int? Logprobs { get; init; }

    /// <summary>The structured output the tokens must follow (JSON schema, regex, choice, grammar), or null.</summary>
    [Id(14)] public StructuredOutput? Structured { get; init; }

    /// <summary>OpenAI's logit_bias: added to the token's logit before sampling (after the penalties), ascending ids.</summary>
    [Id(15)] public IReadOnlyList<TokenBias> LogitBias { get; init; } = [];

    public const int MaxLogprobs = 20;

    public bool IsGreedy => Temperature == 0f;

    /// <summary>The first invalid field as (param, message) in OpenAI's naming, or null when valid.</summary>
    public (string Param, string Message)? Validate()
    {
        if (N < 1) return ("n", $"n must be at least 1, got {N}");
        if (MaxTokens < 1) return ("max_tokens", $"max_tokens must be at least 1, got {MaxTokens}");
        if (MinTokens < 0 || MinTokens > MaxTokens) return ("min_tokens", $"min_tokens must be in [0, max_tokens={MaxTokens}], got {MinTokens}");
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) return ("temperature", $"temperature must be a finite number >= 0, got {Temperature}");
        if (!(TopP > 0 && TopP <= 1)) return ("top_p", $"top_p must be in (0, 1], got {TopP}");
        if (TopK < -1) return ("top_k", $"top_k must be -1 (disabled) or at least 1, got {TopK}");
        if (!(MinP >= 0 && MinP <= 1)) return ("min_p", $"min_p must be in [0, 1], got {MinP}");
        if (!(PresencePenalty >= -2 && PresencePenalty <= 2)) return ("presence_penalty", $"presence_penalty must be in [-2, 2], got {PresencePenalty}");
        if (!(FrequencyPenalty >= -2 && FrequencyPenalty <= 2)) return ("frequency_penalty", $"frequency_penalty must be in [-2, 2], got {FrequencyPenalty}");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty)) return ("repetition_penalty", $"repetition_penalty must be a finite number > 0, got {RepetitionPenalty}");
        if (Logprobs is < 0 or > MaxLogprobs) return ("logprobs", $"logprobs must be in [0, {MaxLogprobs}], got {Logprobs}");
        foreach (var id in StopTokenIds)
            if (id < 0) return ("stop_token_ids", $"stop_token_ids must be non-negative, got {id}");
        foreach (var b in LogitBias)
            if (b.Token < 0 || !float.IsFinite(b.Bias)) return ("logit_bias", $"logit_bias needs token ids >= 0 and finite values, got {b.Token}: {b.Bias}");
        return null;
    }
}

/// <summary>One logit_bias entry: <see cref="Bias"/> is added to token <see cref="Token"/>'s logit.</summary>
[GenerateSerializer, Immutable]
public readonly record struct TokenBias([property: Id(0)] int Token, [property: Id(1)] float Bias)
{
    /// <summary>A logit_bias map as <see cref="SamplingParams.LogitBias"/> holds it: ascending token ids.</summary>
    public static IReadOnlyList<TokenBias> Sorted(IEnumerable<KeyValuePair<int, float>> map) =>
        [.. map.OrderBy(kv => kv.Key).Select(kv => new TokenBias(kv.Key, kv.Value))];
}
