using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// The worker refused the request as invalid; <see cref="Param"/> names the field as OpenAI would.
/// It derives from Exception, not ArgumentException: Orleans has no serializer for ArgumentException's
/// state, so the gateway turns this back into an ArgumentException for its callers.
/// </summary>
[GenerateSerializer]
public sealed class InvalidGenerationRequestException(string param, string message) : Exception(message)
{
    [Id(0)] public string Param { get; private set; } = param;
}
