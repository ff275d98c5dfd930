using Loom.Gateway.OpenAi;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// The gateway's one text path (IncrementalDetokenizer with a StopStringMatcher) on the byte
/// tokenizer the HTTP layer falls back to, without a server.
/// </summary>
public sealed class TextDecodingTests
{
    private static readonly ByteTokenizer Tok = new();

    private static List<string> DecodeAll(string text, bool skipSpecial = true)
    {
        var d = new IncrementalDetokenizer(Tok, skipSpecial, promptIds: Tok.Encode("prompt"));
        var pieces = Tok.Encode(text).Select(id => d.Add(id).Text).ToList();
        pieces.Add(d.Flush());
        return pieces;
    }

    [Theory]
    [InlineData("plain ascii")]
    [InlineData("emoji 😀 and 𝄞 outside the BMP")]
    [InlineData("中文字符 and café")]
    [InlineData("special <|im_end|> inside")]
    public void Decoder_NeverSplitsACharacter_AndLosesNothing(string text)
    {
        var pieces = DecodeAll(text, skipSpecial: false);
        Assert.Equal(text, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
    }

    [Fact]
    public void Decoder_SkipsSpecialTokensWhenAsked()
    {
        Assert.Equal("a b", string.Concat(DecodeAll("a<|im_end|> b")));
    }

    [Fact]
    public void Decoder_FlushesAnUnfinishedCharacterAtTheEnd()
    {
        var d = new IncrementalDetokenizer(Tok);
        Assert.Equal("a", d.Add('a').Text);
        Assert.Equal("", d.Add(0xF0).Text); // first byte of a 4-byte character
        Assert.Equal("\uFFFD", d.Flush());
    }

    [Theory]
    [InlineData("Hello world", "o w", false, "Hell", true)]
    [InlineData("Hello world", "o w", true, "Hello w", true)]
    [InlineData("abc", "abd", false, "abc", false)]
    [InlineData("x</s>y", "</s>", false, "x", true)]
    [InlineData("aaab", "aab", false, "a", true)]
    public void StopStringsAcrossTokens(string text, string stop, bool include, string expected, bool stopped)
    {
        var d = new IncrementalDetokenizer(Tok, stops: new StopStringMatcher([stop], include));
        string outText = string.Concat(Tok.Encode(text).Select(id => d.Add(id).Text)) + d.Flush();
        Assert.Equal(expected, outText);
        Assert.Equal(stopped, d.Stopped);
    }

    [Fact]
    public void Matcher_HoldsBackOnlyAPossibleStopPrefix()
    {
        var s = new StopStringMatcher(["STOP"]);
        Assert.Equal("abc", s.Push("abcST").Text);
        Assert.Equal("STx", s.Push("x").Text);
        Assert.Equal("", s.Push("S").Text);
        Assert.Equal("", s.Push("TOP and more").Text);
        Assert.True(s.Stopped);
    }

    [Fact]
    public void Matcher_EarliestOfSeveralStopsWins()
    {
        var s = new StopStringMatcher(["world", "lo"]);
        Assert.Equal("Hel", s.Push("Hello world").Text + s.Flush());
    }
}
