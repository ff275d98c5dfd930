using Loom.Grains.Abstractions;

namespace Loom.Silo.Engine;

/// <summary>
/// What a worker is asked to do: token ids in, sampling parameters, and a cache salt that keeps
/// prefix-cache entries apart (LoRA adapters, per-tenant cache_salt). Workers never see text.
/// </summary>
public sealed record EngineRequest(string RequestId, IReadOnlyList<int> PromptTokenIds, SamplingParams Sampling, ulong CacheSalt = 0);

/// <summary>A request the engine refuses at Submit; Param names the offending field as OpenAI would.</summary>
public sealed class EngineRequestException(string param, string message) : ArgumentException(message, param)
{
    public string Param { get; } = param;
}
