namespace Loom.Grains.Abstractions;

/// <summary>One alternative token with its log-probability.</summary>
public readonly record struct TokenLogprob(int TokenId, float Logprob);

/// <summary>
/// One new token of one output sequence (<c>Index</c> is the sample index for n &gt; 1). The last
/// delta of a sequence carries its finish reason; an aborted or failed sequence may end with a
/// delta whose TokenId is -1. Usage counts ride along so a client never has to recount.
/// </summary>
public sealed record TokenDelta(
    int Index,
    int TokenId,
    float? Logprob,
    IReadOnlyList<TokenLogprob>? TopLogprobs,
    FinishReason? Finish,
    int PromptTokens,
    int CompletionTokens,
    string? Error = null);
