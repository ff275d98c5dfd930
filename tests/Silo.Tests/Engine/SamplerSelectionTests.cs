using Loom.Silo.Engine;

namespace Loom.Silo.Tests.Engine;

public class SamplerSelectionTests
{
    [Fact]
    public void KeysOrderByLogitDescendingThenIdAndRoundTrip()
    {
        float[] values = [float.NegativeInfinity, -1e30f, -2.5f, -0f, 0f, 1e-40f, 3.25f, float.MaxValue];
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToUInt32Bits(values[i]), BitConverter.SingleToUInt32Bits(TokenSelection.KeyValue(TokenSelection.Key(values[i], i))));
            for (int j = 0; j < values.Length; j++)
                if (values[i] > values[j]) Assert.True(TokenSelection.Key(values[i], 100) < TokenSelection.Key(values[j], 0));
        }
        Assert.True(TokenSelection.Key(1f, 3) < TokenSelection.Key(1f, 4));
        Assert.Equal(42, (int)(uint)TokenSelection.Key(7f, 42));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5000, 1)]
    [InlineData(5000, 37)]
    [InlineData(5000, 4999)]
    [InlineData(20, 10)]
    public void SelectSmallestLeavesTheKSmallestKeysInFront(int n, int k)
    {
        var rng = new Random(n * 31 + k);
        var keys = Enumerable.Range(0, n).Select(i => TokenSelection.Key((float)rng.NextDouble(), i)).ToArray();
        var expected = keys.Order().Take(k).ToArray();
        TokenSelection.SelectSmallest(keys, k);
        Assert.Equal(expected, keys.Take(k).Order());
    }

    [Theory]
    [InlineData(3000, 0.9f, 1)]
    [InlineData(3000, 0.5f, 2)]
    [InlineData(3000, 0.01f, 3)]
    [InlineData(100, 0.999f, 4)]
    [InlineData(10, 0.6f, 5)]
    public void NucleusMatchesASortedCumulativeSum(int n, float topP, int seed)
    {
        var rng = new Random(seed);
        var logits = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 12)).ToArray();
        var keys = Enumerable.Range(0, n).Select(i => TokenSelection.Key(logits[i], i)).ToArray();
        float max = logits.Max();
        var w = logits.Select(l => MathF.Exp(l - max)).ToArray();

        var order = Enumerable.Range(0, n).OrderBy(i => keys[i]).ToArray();
        double total = w.Sum(x => (double)x), before = 0;
        var expected = new List<int>();
        foreach (var i in order)
        {
            if (before >= topP * total) break;
            expected.Add(i);
            before += w[i];
        }

        int m = TokenSelection.Nucleus(keys, w, topP * total);
        Assert.Equal(expected.Order(), keys.Take(m).Select(k => (int)(uint)k).Order());
        for (int i = 0; i < n; i++) Assert.Equal(MathF.Exp(logits[(int)(uint)keys[i]] - max), w[i]); // moved together
    }
}
