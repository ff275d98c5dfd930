using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>What a structured output's <see cref="StructuredOutput.Text"/> holds.</summary>
[GenerateSerializer]
public enum StructuredOutputKind
{
    /// <summary>A JSON Schema (JSON text); json_object mode is the schema {"type":"object"}.</summary>
    JsonSchema,

    /// <summary>A regular expression the whole output must match.</summary>
    Regex,

    /// <summary>A JSON array of strings: the output is exactly one of them.</summary>
    Choice,

    /// <summary>A GBNF grammar (llama.cpp's format) whose root rule the output must match.</summary>
    Grammar,
}

/// <summary>
/// A constraint the output must follow, enforced token by token on the worker (compiled once per
/// worker against its vocabulary and cached). The gateway sets it from response_format,
/// structured_outputs or tool_choice, after checking that it compiles.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record StructuredOutput(
    [property: Id(0)] StructuredOutputKind Kind,
    [property: Id(1)] string Text);
