using System.Text.Json;
using System.Text.RegularExpressions;
using Loom.Grains.Abstractions;
using Loom.Silo.Structured;

namespace Loom.Gateway.Tests.Structured;

/// <summary>
/// The masks on real vocabularies (GPT-2's byte-level BPE, Llama 3, Qwen3, Mistral's SentencePiece
/// with byte fallback): random walks that draw any allowed token always end in text the constraint
/// accepts once decoded by the real tokenizer (so tokens spanning boundaries, byte tokens and split
/// UTF-8 characters all compose correctly), and the tokens one would expect are allowed.
/// </summary>
public sealed class StructuredTokenizerTests
{
    public static TheoryData<string> Models => [.. StructuredVocabularies.Names];

    private const string UnicodeRegex = "(héllo|日本語|🙂|ß){1,3} [a-z]{2,5}[0-9]?";

    [SkippableTheory]
    [MemberData(nameof(Models))]
    public void StructuredRandomWalksOverARealVocabularyDecodeToMatchingText(string model)
    {
        var v = StructuredVocabularies.TryGet(model, out string why);
        Skip.If(v is null, why);
        var (tok, vocab, eos) = v!.Value;
        var cache = new ConstraintCache(vocab);
        var rng = new Random(11);
        var regex = new StructuredOutput(StructuredOutputKind.Regex, UnicodeRegex);
        var schema = new StructuredOutput(StructuredOutputKind.JsonSchema, """
            {"type":"object","properties":{"name":{"type":"string","maxLength":6},"tags":{"type":"array","items":{"enum":["ä","日本","x\"y"]},"maxItems":3},
             "n":{"type":"integer","minimum":-20,"maximum":300},"ok":{"type":"boolean"}},"required":["name","tags","n"],"additionalProperties":false}
            """);
        var choice = new StructuredOutput(StructuredOutputKind.Choice, """["naïve","日本語です","plain"]""");
        for (int walk = 0; walk < 12; walk++)
        {
            string text = Walk(cache.Get(regex), vocab, eos, tok, rng);
            Assert.Matches(new Regex("^(?:" + UnicodeRegex + ")$"), text);
            string json = Walk(cache.Get(schema), vocab, eos, tok, rng);
            using var doc = JsonDocument.Parse(json);
            Assert.InRange(doc.RootElement.GetProperty("n").GetInt32(), -20, 300);
            Assert.True(doc.RootElement.GetProperty("name").GetString()!.Length <= 6);
            Assert.Contains(Walk(cache.Get(choice), vocab, eos, tok, rng), new[] { "naïve", "日本語です", "plain" });
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Models))]
    public void StructuredMasksAllowTokensThatSpanBoundariesAndSplitCharacters(string model)
    {
        var v = StructuredVocabularies.TryGet(model, out string why);
        Skip.If(v is null, why);
        var (tok, vocab, eos) = v!.Value;
        var compiled = new ConstraintCache(vocab).Get(new StructuredOutput(StructuredOutputKind.Regex, "日本語|\\{\"a\": 1\\}"));
        var mask = Allowed(compiled.Start(eos), vocab.Size);
        // Every token whose bytes are a prefix of an accepted text is allowed, and only those: e.g. '{"'
        // where the vocabulary has it, and a token holding the first byte(s) of 日 (a split character).
        byte[][] accepted = [System.Text.Encoding.UTF8.GetBytes("日本語"), System.Text.Encoding.UTF8.GetBytes("{\"a\": 1}")];
        int splitCharTokens = 0;
        for (int t = 0; t < vocab.Size; t++)
        {
            byte[] b = vocab.Bytes(t).ToArray();
            bool fits = b.Length > 0 && accepted.Any(a => a.AsSpan().StartsWith(b.AsSpan()));
            Assert.True(fits == mask[t], $"token {t} ({tok.IdToToken(t)}) fits={fits} allowed={mask[t]}");
            if (fits && b.Length < 3 && b[0] == 0xE6) splitCharTokens++;
        }
        Assert.True(splitCharTokens > 0, "no token holding part of a UTF-8 character was allowed");
        Assert.False(mask[eos[0]], "EOS allowed before the constraint accepts");
    }

    private static bool[] Allowed(TokenConstraint c, int vocab)
    {
        var words = new uint[(vocab + 31) / 32];
        c.FillAllowed(words);
        var allowed = new bool[vocab];
        for (int t = 0; t < vocab; t++) allowed[t] = (words[t >> 5] & (1u << (t & 31))) != 0;
        return allowed;
    }

    /// <summary>Draws uniformly among the allowed tokens until EOS; returns the decoded text.</summary>
    internal static string Walk(CompiledConstraint compiled, TokenVocabulary vocab, int[] eos, Loom.Gateway.Tokenization.ITokenizer tok, Random rng, int maxSteps = 400)
    {
        var c = compiled.Start(eos);
        var ids = new List<int>();
        var words = new uint[(vocab.Size + 31) / 32];
        var choices = new List<int>();
        for (int step = 0; step < maxSteps; step++)
        {
            Array.Clear(words);
            c.FillAllowed(words);
            choices.Clear();
            for (int w = 0; w < words.Length; w++)
                for (uint bits = words[w]; bits != 0; bits &= bits - 1)
                    choices.Add(w * 32 + System.Numerics.BitOperations.TrailingZeroCount(bits));
            Assert.NotEmpty(choices);
            // Favour EOS once it is allowed, so walks end.
            int t = choices.Contains(eos[0]) && rng.Next(3) == 0 ? eos[0] : choices[rng.Next(choices.Count)];
            if (t == eos[0]) return tok.Decode([.. ids], skipSpecialTokens: false);
            c.Advance(t);
            ids.Add(t);
        }
        throw new Xunit.Sdk.XunitException($"no EOS after {maxSteps} steps: {tok.Decode([.. ids], false)}");
    }
}
