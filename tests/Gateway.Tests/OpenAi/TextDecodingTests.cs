using Loom.Gateway.OpenAi;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>The local incremental decoder and the stop-string scanner, without a server.</summary>
public sealed class TextDecodingTests
{
    private static readonly ByteTokenizer Tok = new();

    private static List<string> DecodeAll(string text, bool skipSpecial = true)
    {
        var d = new LocalDecoderFactory().Create(Tok, Tok.Encode("prompt"), skipSpecial);
        var pieces = Tok.Encode(text).Select(d.Append).ToList();
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
        var d = new LocalDecoder(Tok, [], skipSpecialTokens: true);
        Assert.Equal("a", d.Append('a'));
        Assert.Equal("", d.Append(0xF0)); // first byte of a 4-byte character
        Assert.Equal("\uFFFD", d.Flush());
    }

    [Theory]
    [InlineData(new[] { "Hel", "lo", " wor", "ld" }, "o w", false, "Hell", true)]
    [InlineData(new[] { "Hel", "lo", " wor", "ld" }, "o w", true, "Hello w", true)]
    [InlineData(new[] { "ab", "c" }, "abd", false, "abc", false)]
    [InlineData(new[] { "x<", "/s", ">y" }, "</s>", false, "x", true)]
    [InlineData(new[] { "aaab" }, "aab", false, "a", true)]
    public void Scanner_FindsStopStringsAcrossPieces(string[] pieces, string stop, bool include, string expected, bool stopped)
    {
        var s = new StopStringScanner([stop], include);
        string outText = string.Concat(pieces.Select(s.Push)) + s.Flush();
        Assert.Equal(expected, outText);
        Assert.Equal(stopped, s.Stopped);
    }

    [Fact]
    public void Scanner_HoldsBackOnlyAPossibleStopPrefix()
    {
        var s = new StopStringScanner(["STOP"], false);
        Assert.Equal("abc", s.Push("abcST"));
        Assert.Equal("STx", s.Push("x"));
        Assert.Equal("", s.Push("S"));
        Assert.Equal("", s.Push("TOP and more"));
        Assert.True(s.Stopped);
    }

    [Fact]
    public void Scanner_EarliestOfSeveralStopsWins()
    {
        var s = new StopStringScanner(["world", "lo"], false);
        Assert.Equal("Hel", s.Push("Hello world") + s.Flush());
    }
}
