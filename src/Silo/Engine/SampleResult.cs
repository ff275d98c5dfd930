using Loom.Grains.Abstractions;

using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>
/// One sampled token. <see cref="Logprob"/> (the chosen token's raw log-probability) and
/// <see cref="TopLogprobs"/> (the <c>Logprobs</c> most likely tokens of the raw distribution, most
/// likely first, ties by lower id) are null unless the request asked for logprobs.
/// </summary>
public readonly record struct SampleResult(int Token, float? Logprob, IReadOnlyList<TokenLogprob>? TopLogprobs);
