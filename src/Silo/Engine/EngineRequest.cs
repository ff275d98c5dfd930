using Loom.Grains.Abstractions;

namespace Loom.Silo.Engine;

/// <summary>
/// What a worker is asked to do: token ids in, sampling parameters, and a cache salt that keeps
/// prefix-cache entries apart (LoRA adapters, per-tenant cache_salt). Workers never see text.
/// </summary>
/// <remarks>
/// <c>ResumeOutputTokens</c> (failover, n = 1 only): tokens this request already generated on a
/// worker that died. They are appended to the prompt and counted as output (for max_tokens,
/// min_tokens, the penalties and CompletionTokens), and sampling continues at output index k with
/// the seed <see cref="SamplingState.DeriveSeed"/> gives, so a seeded request produces exactly
/// what the uninterrupted run would have.
/// </remarks>
public sealed record EngineRequest(string RequestId, IReadOnlyList<int> PromptTokenIds, SamplingParams Sampling, ulong CacheSalt = 0,
    IReadOnlyList<int>? ResumeOutputTokens = null);

/// <summary>A request the engine refuses at Submit; Param names the offending field as OpenAI would.</summary>
public sealed class EngineRequestException(string param, string message) : ArgumentException(message, param)
{
    public string Param { get; } = param;
}
