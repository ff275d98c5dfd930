namespace Loom.Grains.Abstractions;

/// <summary>
/// Per-request sampling parameters with vLLM's meanings and defaults. Temperature 0 is greedy.
/// TopK &lt;= 0 disables top-k. Logprobs is the number of top alternatives to return with each
/// token (null: none). Seed makes sampling reproducible whatever else shares the batch.
/// </summary>
public sealed record SamplingParams
{
    public int N { get; init; } = 1;
    public float Temperature { get; init; } = 1f;
    public float TopP { get; init; } = 1f;
    public int TopK { get; init; }
    public float MinP { get; init; }
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }
    public float RepetitionPenalty { get; init; } = 1f;
    public ulong? Seed { get; init; }
    public int MaxTokens { get; init; } = 16;
    public int MinTokens { get; init; }
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    public bool IgnoreEos { get; init; }
    public int? Logprobs { get; init; }

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
        return null;
    }
}
