using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>One alternative token with its log-probability.</summary>
[GenerateSerializer, Immutable]
public readonly record struct TokenLogprob([property: Id(0)] int TokenId, [property: Id(1)] float Logprob);

/// <summary>
/// One new token of one output sequence (<c>Index</c> is the sample index for n &gt; 1): only what the
/// gateway reads. The last delta of a sequence carries its finish reason; an aborted sequence ends
/// with a delta whose TokenId is -1. The gateway counts usage itself.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record TokenDelta(
    [property: Id(0)] int Index,
    [property: Id(1)] int TokenId,
    [property: Id(2)] float? Logprob,
    [property: Id(3)] IReadOnlyList<TokenLogprob>? TopLogprobs,
    [property: Id(4)] FinishReason? Finish);
