using System.Text;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Xunit.Abstractions;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>Streaming decode equals the full decode, never emits half a character, and stops on
/// stop strings that span tokens. Runs on the real npm tokenizer files (skips without npm).</summary>
public sealed class IncrementalDetokenizerTests(ITestOutputHelper output)
{
    private HfTokenizer Load(string model)
    {
        var tok = HfModelFiles.TryLoad(model, out string why);
        if (tok is null)
        {
            output.WriteLine("skipped: " + why);
        }
        Skip.If(tok is null, why);
        return tok!;
    }

    private static string Stream(IncrementalDetokenizer d, IEnumerable<int> ids, List<string>? chunks = null)
    {
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            var delta = d.Add(id);
            chunks?.Add(delta.Text);
            sb.Append(delta.Text);
            if (delta.Stopped)
            {
                return sb.ToString();
            }
        }
        return sb.Append(d.Flush()).ToString();
    }

    [SkippableTheory]
    [InlineData("qwen3")]
    [InlineData("llama3")]
    [InlineData("llama2")]
    public void RandomIds_IncludingSplitCharacters_MatchFullDecode(string model)
    {
        var tok = Load(model);
        var rng = new Random(11);
        // Ids that decode to lone UTF-8 bytes (continuation and lead bytes) split characters.
        var byteIds = new List<int>();
        for (int b = 0x80; b < 0x100; b++)
        {
            int? id = tok.TokenToId($"<0x{b:X2}>") ?? tok.TokenToId(ByteLevelBpeModelChars(b));
            if (id is { } v)
            {
                byteIds.Add(v);
            }
        }
        Assert.NotEmpty(byteIds);
        var specialIds = tok.AddedTokens.Select(t => t.Id).ToArray();
        // HF's ByteFallback decoder judges a whole run of <0xNN> tokens at once: an invalid run
        // becomes one U+FFFD per byte, even where a prefix of it was a valid character that a
        // stream (vLLM's too) has already sent. So for byte-fallback vocabularies the byte tokens
        // come as whole UTF-8 characters (still split across tokens); byte-level vocabularies
        // get arbitrary byte soup.
        bool byteFallback = tok.TokenToId("<0x80>") is not null;
        int checkedSequences = 0;
        for (int trial = 0; trial < 400; trial++)
        {
            int len = rng.Next(1, 40);
            var ids = new int[len];
            for (int i = 0; i < len; i++)
            {
                int kind = rng.Next(10);
                byte[] utf8 = Encoding.UTF8.GetBytes(char.ConvertFromUtf32(rng.Next(2) == 0 ? rng.Next(0x80, 0x800) : rng.Next(0x1F300, 0x1F650)));
                if (kind < 4 && byteFallback && i + utf8.Length <= len)
                {
                    foreach (byte b in utf8)
                    {
                        ids[i++] = tok.TokenToId($"<0x{b:X2}>")!.Value;
                    }
                    i--;
                    continue;
                }
                if (kind < 4 && byteFallback)
                {
                    kind = 9; // no room for a whole character: an ordinary id instead
                }
                ids[i] = kind < 4 ? byteIds[rng.Next(byteIds.Count)]
                    : kind == 4 ? specialIds[rng.Next(specialIds.Length)]
                    : RandomOrdinaryId(tok, rng, byteFallback);
            }
            foreach (bool skip in new[] { true, false })
            {
                string streamed = Stream(new IncrementalDetokenizer(tok, skip), ids);
                Assert.Equal(tok.Decode(ids, skip), streamed);
                checkedSequences++;
            }
        }
        output.WriteLine($"{model}: {checkedSequences} random sequences streamed == full decode");
    }

    // A uniformly random id; for byte-fallback vocabularies never a lone <0xNN> (see above).
    private static int RandomOrdinaryId(HfTokenizer tok, Random rng, bool byteFallback)
    {
        while (true)
        {
            int id = rng.Next(tok.VocabSize);
            if (!byteFallback || tok.IdToToken(id) is not { } t || !t.StartsWith("<0x", StringComparison.Ordinal))
            {
                return id;
            }
        }
    }

    // GPT-2's byte-to-char map as a one-char string, to find byte-level single-byte tokens.
    private static string ByteLevelBpeModelChars(int b) => Gpt2TokenizerFiles.ByteToUnicode()[b].ToString();

    [SkippableTheory]
    [InlineData("qwen3")]
    [InlineData("llama3")]
    [InlineData("llama2")]
    public void RealText_NeverEmitsHalfCharacters(string model)
    {
        var tok = Load(model);
        int chunksSeen = 0;
        foreach (string text in HfModelFiles.Corpus.Take(400))
        {
            int[] ids = tok.Encode(text);
            var chunks = new List<string>();
            string streamed = Stream(new IncrementalDetokenizer(tok, skipSpecialTokens: false), ids, chunks);
            Assert.Equal(tok.Decode(ids, skipSpecialTokens: false), streamed);
            foreach (string c in chunks)
            {
                Assert.DoesNotContain('\uFFFD', c);
                Assert.False(c.Length > 0 && char.IsHighSurrogate(c[^1]), "chunk ends in half a surrogate pair");
            }
            chunksSeen += chunks.Count;
        }
        output.WriteLine($"{model}: {chunksSeen} chunks, none with U+FFFD");
    }

    [SkippableFact]
    public void FirstTokenAfterPrompt_KeepsItsSpace_SentencePiece()
    {
        var tok = Load("llama2");
        int[] prompt = tok.Encode("Hello", addSpecialTokens: true);
        int[] all = tok.Encode("Hello world again", addSpecialTokens: true);
        Assert.Equal(prompt, all[..prompt.Length]);
        var d = new IncrementalDetokenizer(tok, promptIds: prompt);
        string streamed = Stream(d, all[prompt.Length..]);
        Assert.Equal(" world again", streamed);
        Assert.Equal(all.Length - prompt.Length, d.GeneratedCount);
    }

    [SkippableTheory]
    [InlineData("qwen3")]
    [InlineData("llama2")]
    public void StopString_AcrossTokens_IsTrimmed(string model)
    {
        var tok = Load(model);
        int[] ids = tok.Encode("The answer is 42.\nObservation: 中文 more text");
        var stops = new StopStringMatcher(["\nObservation:", "never"]);
        string streamed = Stream(new IncrementalDetokenizer(tok, stops: stops), ids);
        Assert.True(stops.Stopped);
        Assert.Equal("The answer is 42.", streamed);

        var keep = new StopStringMatcher(["文 mo"], includeStopStringInOutput: true);
        Assert.Equal("The answer is 42.\nObservation: 中文 mo", Stream(new IncrementalDetokenizer(tok, stops: keep), ids));
    }
}
