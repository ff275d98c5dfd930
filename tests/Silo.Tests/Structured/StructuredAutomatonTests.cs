using System.Text;
using Loom.Grains.Abstractions;
using Loom.Silo.Structured;

namespace Loom.Silo.Tests.Structured;

/// <summary>The automata on their own (a byte vocabulary): exact languages for integer ranges, regexes and GBNF, and refusals by name.</summary>
public sealed class StructuredAutomatonTests
{
    private static LazyDfa Dfa(StructuredOutput spec) => new(new ByteNfa(ConstraintCompiler.ToGrammar(spec)), TokenVocabulary.ByteLevel(300));

    private static bool Accepts(LazyDfa dfa, string text)
    {
        int s = dfa.Walk(dfa.Start, Encoding.UTF8.GetBytes(text));
        return s != LazyDfa.Dead && dfa.IsAccepting(s);
    }

    [Theory]
    [InlineData(-20, 300)]
    [InlineData(1000, 99999)]
    [InlineData(0, 0)]
    [InlineData(-7, -3)]
    public void StructuredIntegerRangesAcceptExactlyTheirIntegers(long lo, long hi)
    {
        var dfa = Dfa(new StructuredOutput(StructuredOutputKind.JsonSchema, $$"""{"type":"integer","minimum":{{lo}},"maximum":{{hi}}}"""));
        for (long v = lo - 1500; v <= hi + 1500; v += v > lo + 2000 && v < hi - 2000 ? 997 : 1)
            Assert.True(Accepts(dfa, v.ToString(System.Globalization.CultureInfo.InvariantCulture)) == (v >= lo && v <= hi), $"{v} in [{lo}, {hi}]");
        Assert.False(Accepts(dfa, "-0"));
        Assert.False(Accepts(dfa, "007"));
    }

    [Fact]
    public void StructuredGbnfRecursionIsBoundedAndExact()
    {
        var dfa = Dfa(new StructuredOutput(StructuredOutputKind.Grammar, """
            # nested parentheses around x
            root ::= "(" root ")" | item
            item ::= [a-c]+ ("," ws [a-c]+)*
            ws ::= " "?
            """));
        Assert.True(Accepts(dfa, "((ab, c))"));
        Assert.True(Accepts(dfa, "a"));
        Assert.False(Accepts(dfa, "((a)"));
        Assert.False(Accepts(dfa, "(d)"));
        Assert.False(Accepts(dfa, new string('(', ByteNfa.MaxRecursion) + "a" + new string(')', ByteNfa.MaxRecursion)));
    }

    [Fact]
    public void StructuredFinishedOutputsAllowOnlyEos()
    {
        var compiled = new ConstraintCache(TokenVocabulary.ByteLevel(300, [299])).Get(new StructuredOutput(StructuredOutputKind.Regex, "ab|abc"));
        var c = compiled.Start([299]);
        foreach (byte b in "ab"u8) c.Advance(b);
        var words = new uint[10];
        c.FillAllowed(words);
        Assert.Equal(1u << ('c' & 31), words['c' >> 5]); // 'c' may follow, and the end (EOS) is allowed too
        Assert.NotEqual(0u, words[299 >> 5] & (1u << (299 & 31)));
        c.Advance('c');
        Array.Clear(words);
        c.FillAllowed(words);
        Assert.Equal(1, words.Sum(w => System.Numerics.BitOperations.PopCount(w)));
        Assert.NotEqual(0u, words[299 >> 5] & (1u << (299 & 31)));
    }

    [Theory]
    [InlineData("""{"type":"object","patternProperties":{}}""", "patternProperties")]
    [InlineData("""{"type":"array","uniqueItems":true}""", "uniqueItems")]
    [InlineData("""{"type":"number","maximum":3}""", "maximum")]
    [InlineData("""{"type":"string","format":"hostname"}""", "format")]
    [InlineData("""{"type":"string","pattern":"a(?!b)"}""", "lookaround")]
    [InlineData("""{"allOf":[{"type":"string"},{"maxLength":3}]}""", "allOf")]
    public void StructuredUnsupportedKeywordsAreRefusedByName(string schema, string keyword)
    {
        var e = Assert.Throws<StructuredOutputException>(() => ConstraintCompiler.Check(new StructuredOutput(StructuredOutputKind.JsonSchema, schema)));
        Assert.Equal(keyword, e.Keyword);
        Assert.Contains(keyword, e.Message);
    }
}
