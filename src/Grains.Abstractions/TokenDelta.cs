using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>One alternative token with its log-probability.</summary>
[GenerateSerializer, Immutable]
public readonly record struct TokenLogprob([property: Id(0)] int TokenId, [property: Id(1)] float Logprob);

/// <summary>
/// One new token of one output sequence (<c>Index</c> is the sample index for n &gt; 1). The last
/// delta of a sequence carries its finish reason; an aborted or failed sequence may end with a
/// delta whose TokenId is -1. Usage counts ride along so a client never has to recount: after a
/// failover the resumed worker counts the tokens streamed before it as completion tokens, so
/// CompletionTokens keeps counting from where the failed worker stopped.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record TokenDelta(
    [property: Id(0)] int Index,
    [property: Id(1)] int TokenId,
    [property: Id(2)] float? Logprob,
    [property: Id(3)] IReadOnlyList<TokenLogprob>? TopLogprobs,
    [property: Id(4)] FinishReason? Finish,
    [property: Id(5)] int PromptTokens,
    [property: Id(6)] int CompletionTokens,
    [property: Id(7)] string? Error = null);
