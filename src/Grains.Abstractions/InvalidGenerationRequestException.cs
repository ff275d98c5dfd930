using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>The worker refused the request as invalid; <see cref="Param"/> names the field as OpenAI would.</summary>
[GenerateSerializer]
public sealed class InvalidGenerationRequestException : ArgumentException
{
    public InvalidGenerationRequestException(string param, string message) : base(message)
    {
        Param = param;
    }

    [Id(0)] public string Param { get; private set; }

    public override string ParamName => Param;
}
