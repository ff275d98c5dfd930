using System.Text.Json;
using Loom.Grains.Abstractions;

namespace Loom.Silo.Structured;

/// <summary>
/// A <see cref="StructuredOutput"/> to its <see cref="Grammar"/>: the gateway calls this to check a
/// request (a <see cref="StructuredOutputException"/> there is a 400), the worker to compile it.
/// </summary>
public static class ConstraintCompiler
{
    public static Grammar ToGrammar(StructuredOutput spec) => spec.Kind switch
    {
        StructuredOutputKind.JsonSchema => JsonSchemaCompiler.Compile(spec.Text),
        StructuredOutputKind.Regex => Grammar.Of(RegexParser.Parse(spec.Text)),
        StructuredOutputKind.Choice => Grammar.Of(Choice(spec.Text)),
        StructuredOutputKind.Grammar => GbnfParser.Parse(spec.Text),
        _ => throw new StructuredOutputException($"unknown structured output kind {spec.Kind}"),
    };

    /// <summary>Compiles <paramref name="spec"/> as the worker would, without a vocabulary: throws when it cannot.</summary>
    public static void Check(StructuredOutput spec) => _ = new ByteNfa(ToGrammar(spec));

    private static Pattern Choice(string json)
    {
        string[]? choices;
        try { choices = JsonSerializer.Deserialize<string[]>(json); }
        catch (JsonException) { choices = null; }
        if (choices is not { Length: > 0 } || choices.Any(c => c is null or { Length: 0 }))
            throw new StructuredOutputException("choice must be a non-empty array of non-empty strings", "choice");
        return Pattern.Either([.. choices.Distinct(StringComparer.Ordinal).Select(Pattern.Text)]);
    }
}
