using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

public class SamplerSupportTests
{
    public static TheoryData<float, int, float, float> Truncations => new()
    {
        // temperature, top_k, top_p, min_p
        { 1f, 50, 1f, 0f },
        { 0.7f, 2000, 1f, 0f },
        { 1f, 0, 0.9f, 0f },
        { 0.5f, 0, 0.3f, 0f },
        { 2f, 0, 0.99f, 0f },
        { 1f, 0, 1f, 0.05f },
        { 1.3f, 0, 0.8f, 0.1f },
        { 1f, 300, 0.7f, 0f },
        { 0.8f, 1000, 0.95f, 0.02f },
        { 1f, 150_000, 0.5f, 0f },
    };

    [Theory]
    [MemberData(nameof(Truncations))]
    public void SupportOnAQwenSizedVocabularyMatchesASortingReference(float t, int topK, float topP, float minP)
    {
        const int vocab = 151_936;
        var logits = SamplerTestKit.PeakedLogits(vocab, topK + (int)(topP * 1000) + (int)(minP * 1e4));
        var p = new SamplingParams { Temperature = t, TopK = topK, TopP = topP, MinP = minP };

        Assert.Equal(Reference(logits, p), new Sampler().Support(logits, p));
    }

    /// <summary>Flat rows (a random model's): the nucleus is tens of thousands of tokens, so the top-p cut runs its quickselect rounds.</summary>
    [Theory]
    [InlineData(0.1f, 0, 0.9f)]
    [InlineData(1f, 0, 0.5f)]
    [InlineData(1f, 5000, 0.95f)]
    [InlineData(3f, 0, 0.99f)]
    public void SupportOfAFlatRowMatchesASortingReference(float spread, int topK, float topP)
    {
        var rng = new Random(17);
        var logits = Enumerable.Range(0, 151_936).Select(_ => spread * (float)rng.NextDouble()).ToArray();
        var p = new SamplingParams { Temperature = 0.8f, TopK = topK, TopP = topP };
        var expected = Reference(logits, p);
        Assert.True(expected.Length > 1000, $"the nucleus has {expected.Length} tokens; the case is meant to be flat");
        Assert.Equal(expected, new Sampler().Support(logits, p));
    }

    private static int[] Reference(float[] logits, SamplingParams p)
    {
        float max = logits.Max();
        var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).ToList();
        var w = logits.Select(l => Math.Exp((l - max) / p.Temperature)).ToArray();
        if (p.MinP > 0) order = order.Where(i => w[i] >= p.MinP).ToList();
        if (p.TopK > 0) order = order.Take(p.TopK).ToList();
        if (p.TopP < 1)
        {
            double total = order.Sum(i => w[i]), before = 0;
            var kept = new List<int>();
            foreach (var i in order)
            {
                if (before >= p.TopP * total) break;
                kept.Add(i);
                before += w[i];
            }
            order = kept;
        }
        return [.. order.Where(i => w[i] > 0).Order()];
    }
}
