using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;

namespace Loom.Gateway.Tests.Tokenization;

public sealed class StopStringMatcherTests
{
    private static (string Text, bool Stopped) Run(StopStringMatcher m, params string[] chunks)
    {
        var sb = new System.Text.StringBuilder();
        foreach (string c in chunks)
        {
            var d = m.Push(c);
            sb.Append(d.Text);
            if (d.Stopped)
            {
                return (sb.ToString(), true);
            }
        }
        return (sb.Append(m.Flush()).ToString(), false);
    }

    [Fact]
    public void StopSplitAcrossChunks_IsTrimmed()
    {
        var (text, stopped) = Run(new StopStringMatcher(["<|end|>"]), "ab", "c<", "|e", "nd|", ">tail");
        Assert.True(stopped);
        Assert.Equal("abc", text);
    }

    [Fact]
    public void IncludeStopString_KeepsItButNothingAfter()
    {
        var (text, stopped) = Run(new StopStringMatcher(["STOP"], includeStopStringInOutput: true), "Hello wor", "ld. ST", "OP here");
        Assert.True(stopped);
        Assert.Equal("Hello world. STOP", text);
    }

    [Fact]
    public void PossibleStart_IsHeldBack_ThenReleased()
    {
        var m = new StopStringMatcher(["\nObservation:"]);
        Assert.Equal("answer", m.Push("answer\nObs").Text);
        Assert.Equal("\nObserve it", m.Push("erve it").Text);
        Assert.Equal("", m.Push("\n").Text);
        Assert.Equal("\n", m.Flush());
    }

    [Fact]
    public void EarliestStopWins()
    {
        var (text, _) = Run(new StopStringMatcher(["world", "lo w"]), "hel", "lo world");
        Assert.Equal("hel", text);
    }

    [Fact]
    public void NoStops_PassesThrough()
    {
        var m = new StopStringMatcher([]);
        Assert.Equal("<|end|>", m.Push("<|end|>").Text);
    }

    [Fact]
    public void RandomChunkings_EqualReference()
    {
        var rng = new Random(7);
        string alphabet = "ab<|>\n 😀";
        string[] stops = ["<|a", "b\n", "😀😀", "aaa"];
        for (int trial = 0; trial < 2000; trial++)
        {
            var full = new System.Text.StringBuilder();
            int len = rng.Next(0, 30);
            for (int i = 0; i < len; i++)
            {
                full.Append(char.IsSurrogate(alphabet[rng.Next(alphabet.Length)]) ? "😀" : alphabet[rng.Next(alphabet.Length - 2)].ToString());
            }
            string s = full.ToString();
            var chunks = new List<string>();
            for (int i = 0; i < s.Length;)
            {
                int n = Math.Min(rng.Next(1, 5), s.Length - i);
                if (char.IsHighSurrogate(s[i + n - 1]) && i + n < s.Length)
                {
                    n++;
                }
                chunks.Add(s.Substring(i, n));
                i += n;
            }
            bool include = rng.Next(2) == 0;

            int best = -1;
            string? bestStop = null;
            foreach (string stop in stops)
            {
                int at = s.IndexOf(stop, StringComparison.Ordinal);
                if (at >= 0 && (best < 0 || at < best || (at == best && stop.Length > bestStop!.Length)))
                {
                    (best, bestStop) = (at, stop);
                }
            }
            string expected = bestStop is null ? s : s[..(best + (include ? bestStop.Length : 0))];

            var (text, stopped) = Run(new StopStringMatcher(stops, include), [.. chunks]);
            Assert.Equal(bestStop is not null, stopped);
            Assert.Equal(expected, text);
        }
    }
}
