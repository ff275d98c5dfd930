using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using static Loom.Silo.Tests.Engine.SamplerTestKit;

namespace Loom.Silo.Tests.Engine;

public class SamplerDeterminismTests
{
    private const int Vocab = 400;

    // A deterministic stand-in for a model: the logits at each step depend on the whole history.
    private static float[] FakeModel(IReadOnlyList<int> prompt, IReadOnlyList<int> output)
    {
        int h = 17;
        foreach (var t in prompt) h = h * 31 + t;
        foreach (var t in output) h = h * 31 + t;
        return RandomLogits(Vocab, h, scale: 2f);
    }

    private static readonly int[] Prompt = [5, 6, 7, 5, 100];

    private static readonly SamplingParams Rich = new()
    {
        Temperature = 0.9f, TopK = 60, TopP = 0.92f, MinP = 0.02f,
        RepetitionPenalty = 1.2f, FrequencyPenalty = 0.4f, PresencePenalty = 0.3f,
        MaxTokens = 60, Seed = 42,
    };

    /// <summary>Samples <paramref name="steps"/> tokens after <paramref name="already"/> (a resumed state's earlier output).</summary>
    private static List<int> Run(SamplingState state, int steps, Sampler? sampler = null, IEnumerable<int>? already = null)
    {
        sampler ??= new Sampler();
        var output = new List<int>(already ?? []);
        for (int i = 0; i < steps; i++)
        {
            int t = sampler.Sample(FakeModel(Prompt, output), state).Token;
            state.Append(t);
            output.Add(t);
        }
        return output;
    }

    [Fact]
    public void SameSeedSameTokensWhateverTheNeighboursAndScratch()
    {
        var alone = Run(new SamplingState(Rich, Prompt, [0]), 40);

        // Interleave with other sequences on one sampler whose scratch is dirty from a bigger vocabulary.
        var sampler = new Sampler();
        sampler.Sample(RandomLogits(50_000, 1), State(new SamplingParams { TopP = 0.5f, Seed = 9 }));
        var mine = new SamplingState(Rich, Prompt, [0]);
        var others = new[]
        {
            State(new SamplingParams { Seed = 42 }), // same seed, other params
            State(new SamplingParams { TopK = 3 }),
            State(new SamplingParams { Temperature = 0f, Logprobs = 4 }),
        };
        var output = new List<int>();
        for (int i = 0; i < 40; i++)
        {
            foreach (var o in others.Take(1 + i % 3))
                o.Append(sampler.Sample(RandomLogits(Vocab, i * 7 + o.Generated), o).Token);
            int t = sampler.Sample(FakeModel(Prompt, output), mine).Token;
            mine.Append(t);
            output.Add(t);
        }
        Assert.Equal(alone, output);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(39)]
    public void ResumingAtOutputIndexKContinuesIdentically(int k)
    {
        var uninterrupted = Run(new SamplingState(Rich, Prompt, [0]), 40);
        var resumed = SamplingState.Resume(Rich, Prompt, uninterrupted.Take(k).ToArray(), [0], seed: 42);
        Assert.Equal(k, resumed.Generated);
        Assert.Equal(uninterrupted, Run(resumed, 40 - k, already: uninterrupted.Take(k)));
    }

    [Fact]
    public void ResumingAnUnseededSequenceNeedsItsRecordedSeed()
    {
        var unseeded = Rich with { Seed = null };
        var first = new SamplingState(unseeded, Prompt, [0]);
        ulong seed = first.Seed;
        var uninterrupted = Run(first, 30);
        var resumed = SamplingState.Resume(unseeded, Prompt, uninterrupted.Take(12).ToArray(), [0], seed);
        Assert.Equal(uninterrupted, Run(resumed, 18, already: uninterrupted.Take(12)));
    }

    [Fact]
    public void ResumedStateCountsGeneratedTokensForPenaltiesMinAndMaxTokens()
    {
        var p = new SamplingParams { Temperature = 0f, PresencePenalty = 1f, MinTokens = 3, MaxTokens = 4 };
        var s = SamplingState.Resume(p, [1], [2, 2, 3], eosTokenIds: [9], seed: 0);
        Assert.Equal(2, s.OutputCount(2));
        Assert.False(s.StopsMasked); // 3 generated >= min_tokens 3
        s.Append(5);
        Assert.Equal(FinishReason.Length, Sampler.CheckFinish(s, 5));
    }

    [Fact]
    public void DifferentSeedsGiveDifferentSequences()
    {
        var a = Run(new SamplingState(Rich with { Seed = 1 }, Prompt, [0]), 30);
        var b = Run(new SamplingState(Rich with { Seed = 2 }, Prompt, [0]), 30);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void UnseededStatesDrawTheirOwnSeeds()
    {
        var p = Rich with { Seed = null };
        var s1 = new SamplingState(p, Prompt, [0]);
        var s2 = new SamplingState(p, Prompt, [0]);
        Assert.NotEqual(s1.Seed, s2.Seed);
        Assert.NotEqual(Run(s1, 30), Run(s2, 30));
    }

    [Fact]
    public void SampleIOfASeededRequestUsesSeedPlusI()
    {
        var s = new SamplingState(Rich, Prompt, [0], sampleIndex: 3);
        Assert.Equal(45UL, s.Seed);
        Assert.Equal(Run(new SamplingState(Rich with { Seed = 45 }, Prompt, [0]), 20), Run(s, 20));
        Assert.Equal(0UL, new SamplingState(Rich with { Seed = ulong.MaxValue }, Prompt, [0], 1).Seed); // wraps
        Assert.NotEqual(Run(new SamplingState(Rich, Prompt, [0], 0), 20), Run(new SamplingState(Rich, Prompt, [0], 1), 20));
    }

    [Fact]
    public void SamplingWithoutAppendingRepeatsTheDraw()
    {
        var logits = RandomLogits(Vocab, 3);
        var state = State(new SamplingParams { Seed = 8, Temperature = 2f });
        var sampler = new Sampler();
        int t = sampler.Sample(logits, state).Token;
        for (int i = 0; i < 5; i++) Assert.Equal(t, sampler.Sample(logits, state).Token);
    }

    [Fact]
    public void CounterRngIsAPureFunctionOfSeedAndCounterAndUniform()
    {
        Assert.Equal(CounterRng.Uniform(5, 9), CounterRng.Uniform(5, 9));
        Assert.NotEqual(CounterRng.Uniform(5, 9), CounterRng.Uniform(5, 10));
        Assert.NotEqual(CounterRng.Uniform(5, 9), CounterRng.Uniform(6, 9));
        // Mean and 10-bin spread of 100k draws from one stream.
        var bins = new int[10];
        double sum = 0;
        for (ulong k = 0; k < 100_000; k++)
        {
            double u = CounterRng.Uniform(77, k);
            Assert.InRange(u, 0.0, 0.9999999999999999);
            sum += u;
            bins[(int)(u * 10)]++;
        }
        Assert.InRange(sum / 100_000, 0.497, 0.503);
        Assert.True(ChiSquare(bins, [.. Enumerable.Repeat(0.1, 10)]) < 27.9); // 9 dof, p = 0.001
    }
}
