using Loom.Grains.Abstractions;

namespace Loom.Silo.Engine;


/// <summary>
/// One sampled token. <see cref="Logprob"/> is always the chosen token's raw log-probability.
/// <see cref="TopLogprobs"/> is null unless the request asked for logprobs; then it holds the
/// <c>Logprobs</c> most likely tokens of the raw distribution, most likely first (ties: lower id first).
/// The chosen token may or may not be among them; its own logprob is always in <see cref="Logprob"/>.
/// </summary>
public readonly record struct SampleResult(int Token, float Logprob, IReadOnlyList<TokenLogprob>? TopLogprobs);
