using System.Text;
using Loom.Grains.Abstractions;
using Loom.Silo.Structured;

namespace Loom.Silo.Tests.Structured;

/// <summary>
/// A vocabulary with many multi-byte tokens (so masks, not states, dominate what a DFA keeps, as on
/// a real 152k vocabulary), specs of every kind, and random walks checked against a reference.
/// </summary>
internal static class StructuredTestKit
{
    /// <summary>256 byte tokens, 30000 random 2-5 byte tokens over JSON-ish characters, and EOS last (no bytes).</summary>
    public static readonly TokenVocabulary Vocabulary = BuildVocabulary(30000, seed: 1);

    public static int Eos => Vocabulary.Size - 1;

    public static int Words => (Vocabulary.Size + 31) / 32;

    public static readonly StructuredOutput[] Specs =
    [
        new(StructuredOutputKind.JsonSchema, """
            {"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":150},
             "tags":{"type":"array","items":{"enum":["red","green","blue"]},"maxItems":3}},"required":["name","age"]}
            """),
        new(StructuredOutputKind.Regex, @"[a-z]{3,10}@[a-z]{2,8}\.(com|org|net)"),
        new(StructuredOutputKind.JsonSchema, """{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"when":{"type":"string","format":"date"}},"required":["id","when"]}"""),
        new(StructuredOutputKind.Choice, """["alpha beta","gamma","delta epsilon zeta"]"""),
        new(StructuredOutputKind.Grammar, "root ::= \"(\" root \")\" | item\nitem ::= [a-c]+ (\",\" ws [a-c]+)*\nws ::= \" \"?"),
        new(StructuredOutputKind.JsonSchema, """{"type":"array","items":{"type":"object","properties":{"k":{"type":"string","maxLength":6},"v":{"type":"number"}},"required":["k","v"]},"maxItems":4}"""),
    ];

    private static TokenVocabulary BuildVocabulary(int extra, int seed)
    {
        const string alphabet = "{}[]\":, abcdefghijklmnopqrstuvwxyz0123456789-.@()";
        var rng = new Random(seed);
        var bytes = new byte[]?[256 + extra + 1];
        for (int t = 0; t < 256; t++) bytes[t] = [(byte)t];
        for (int t = 256; t < 256 + extra; t++)
            bytes[t] = Encoding.ASCII.GetBytes(Enumerable.Range(0, rng.Next(2, 6)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray());
        return new TokenVocabulary(bytes);
    }

    public static uint[] Allowed(TokenConstraint c)
    {
        var words = new uint[Words];
        c.FillAllowed(words);
        return words;
    }

    /// <summary>A random allowed token: EOS only now and then while others are allowed, so walks go deep; -1 when none is.</summary>
    public static int Pick(uint[] allowed, Random rng)
    {
        var ids = new List<int>();
        for (int w = 0; w < allowed.Length; w++)
            for (uint bits = allowed[w]; bits != 0; bits &= bits - 1) ids.Add(w * 32 + System.Numerics.BitOperations.TrailingZeroCount(bits));
        bool eos = ids.Remove(Eos);
        if (ids.Count == 0 || (eos && rng.Next(8) == 0)) return eos ? Eos : -1;
        return ids[rng.Next(ids.Count)];
    }

    /// <summary>
    /// Walks <paramref name="c"/> and <paramref name="reference"/> (an unbounded compile of the same
    /// spec) in lockstep with random allowed tokens, asserting equal masks at every step and calling
    /// <paramref name="check"/> after each; returns the tokens taken.
    /// </summary>
    public static List<int> Walk(TokenConstraint c, TokenConstraint reference, Random rng, int maxSteps, Action? check = null)
    {
        var tokens = new List<int>();
        for (int step = 0; step < maxSteps; step++)
        {
            var got = Allowed(c);
            Assert.Equal(Allowed(reference), got);
            check?.Invoke();
            int token = Pick(got, rng);
            if (token < 0) break;
            c.Advance(token);
            reference.Advance(token);
            tokens.Add(token);
            if (token == Eos) break;
        }
        return tokens;
    }
}
