using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>Why a sequence stopped, spelled as OpenAI spells finish_reason.</summary>
[GenerateSerializer]
public enum FinishReason
{
    Stop,
    Length,
    Abort,
}
