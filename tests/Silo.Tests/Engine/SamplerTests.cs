using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using static Loom.Silo.Tests.Engine.SamplerTestKit;

namespace Loom.Silo.Tests.Engine;

public class SamplerTests
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0f };

    [Fact]
    public void GreedyIsArgmaxWithTiesToLowestId()
    {
        var sampler = new Sampler();
        Assert.Equal(3, sampler.Sample([1f, 2f, -4f, 7f, 0f], State(Greedy)).Token);
        Assert.Equal(1, sampler.Sample([1f, 5f, 3f, 5f, 5f], State(Greedy)).Token);
        Assert.Equal(2, sampler.Sample([float.NegativeInfinity, -3f, -1f, -1f], State(Greedy)).Token);
    }

    [Theory]
    [InlineData(100_003, new[] { 70_001, 5, 99_999 })]
    [InlineData(37, new[] { 36, 35 })]
    [InlineData(4096, new[] { 4095, 8, 9, 10 })]
    public void GreedyTiesOnALongRowGoToTheLowestId(int vocab, int[] maxima)
    {
        var logits = RandomLogits(vocab, vocab);
        foreach (var id in maxima) logits[id] = 50f;
        Assert.Equal(maxima.Min(), new Sampler().Sample(logits, State(Greedy)).Token);
        var masked = Enumerable.Repeat(float.NegativeInfinity, vocab).ToArray();
        Assert.Equal(0, new Sampler().Sample(masked, State(Greedy)).Token); // everything masked: token 0
    }

    [Fact]
    public void GreedyIgnoresTheSeedAndNeedsNone()
    {
        var logits = RandomLogits(500, 7);
        int expected = Array.IndexOf(logits, logits.Max());
        for (ulong s = 0; s < 5; s++)
            Assert.Equal(expected, new Sampler().Sample(logits, State(Greedy with { Seed = s })).Token);
        Assert.Equal(expected, new Sampler().Sample(logits, State(Greedy)).Token);
    }

    [Fact]
    public void TemperaturesBelowVllmsEpsilonAreGreedy()
    {
        float[] logits = [1f, 5f, 3f, 5f];
        foreach (var t in new[] { 1e-6f, 1e-30f, float.Epsilon })
            for (ulong seed = 0; seed < 10; seed++)
                Assert.Equal(1, new Sampler().Sample(logits, State(new SamplingParams { Temperature = t, Seed = seed })).Token);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.6)]
    [InlineData(2.5)]
    public void TemperatureSamplesSoftmaxOfScaledLogits(double t)
    {
        float[] logits = [1f, 2f, 0.5f, 3f, -1f];
        var counts = Histogram(logits, new SamplingParams { Temperature = (float)t }, 10_000);
        // 4 degrees of freedom: P(chi2 > 18.47) = 0.001. The draws are seeded, so this never flakes.
        Assert.True(ChiSquare(counts, Softmax(logits, t)) < 18.47, string.Join(",", counts));
    }

    [Fact]
    public void TopK1IsGreedy()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var logits = RandomLogits(3000, seed);
            int argmax = Array.IndexOf(logits, logits.Max());
            var state = State(new SamplingParams { TopK = 1, Temperature = 1.5f, Seed = (ulong)seed });
            Assert.Equal(argmax, new Sampler().Sample(logits, state).Token);
        }
    }

    [Fact]
    public void TopKRestrictsSupportToTheKMostLikelyAndRenormalises()
    {
        var logits = RandomLogits(200, 3, scale: 1f);
        var top5 = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).Take(5).Order().ToArray();
        var counts = Histogram(logits, new SamplingParams { TopK = 5, Temperature = 1f }, 5000);
        Assert.Equal(top5, Support(counts));
        var expected = new double[logits.Length];
        double z = top5.Sum(i => Math.Exp(logits[i]));
        foreach (var i in top5) expected[i] = Math.Exp(logits[i]) / z;
        Assert.True(ChiSquare(counts, expected) < 18.47);
    }

    [Theory]
    [InlineData(0.3f, new[] { 3 })]
    [InlineData(0.65f, new[] { 0, 3 })]
    [InlineData(0.75f, new[] { 0, 2, 3 })]
    [InlineData(0.95f, new[] { 0, 1, 2, 3 })]
    public void TopPKeepsTheMinimalNucleus(float topP, int[] expected)
    {
        // p(3)=0.4, p(0)=0.3, p(2)=0.2, p(1)=0.1
        var logits = LogitsOf(0.3, 0.1, 0.2, 0.4);
        var counts = Histogram(logits, new SamplingParams { TopP = topP }, 3000);
        Assert.Equal(expected, Support(counts));
    }

    [Fact]
    public void TopPIsTakenOverTheTopKRenormalisedDistribution()
    {
        var logits = LogitsOf(0.4, 0.3, 0.2, 0.1);
        // Alone, top_p 0.5 keeps {0, 1} (0.4 < 0.5). After top_k 2 the masses are 4/7, 3/7: only {0}.
        Assert.Equal([0, 1], Support(Histogram(logits, new SamplingParams { TopP = 0.5f }, 2000)));
        Assert.Equal([0], Support(Histogram(logits, new SamplingParams { TopP = 0.5f, TopK = 2 }, 2000)));
    }

    [Fact]
    public void TopPKeepsTheTopTokenEvenWhenItAloneExceedsP()
    {
        var logits = LogitsOf(0.05, 0.9, 0.05);
        Assert.Equal([1], Support(Histogram(logits, new SamplingParams { TopP = 0.01f }, 500)));
    }

    [Theory]
    [InlineData(1.0f, 0.2f, new[] { 0, 1, 2 })]
    [InlineData(1.0f, 0.5f, new[] { 0, 1 })]
    [InlineData(1.0f, 1.0f, new[] { 0 })]
    [InlineData(0.5f, 0.2f, new[] { 0, 1 })] // at T=0.5 the ratios to the max are 1, 0.36, 0.09, 0.01
    public void MinPDropsTokensBelowAFractionOfTheMostLikelyAfterTemperature(float t, float minP, int[] expected)
    {
        var logits = LogitsOf(0.5, 0.3, 0.15, 0.05);
        var counts = Histogram(logits, new SamplingParams { Temperature = t, MinP = minP }, 3000);
        Assert.Equal(expected, Support(counts));
    }

    [Fact]
    public void PenaltiesMatchHandComputedLogits()
    {
        var p = new SamplingParams { RepetitionPenalty = 2f, FrequencyPenalty = 0.5f, PresencePenalty = 0.3f };
        var state = State(p, prompt: [0, 1]);
        foreach (var t in new[] { 1, 2, 2 }) state.Append(t);
        float[] logits = [2f, -1f, 0.5f, 3f, -2f];
        var got = new Sampler().Adjusted(logits, state);
        // repetition over {0,1,2}: 2/2, -1*2, 0.5/2; frequency 0.5·count and presence 0.3 over outputs {1:1, 2:2}
        float[] expected = [1f, -2f - 0.5f - 0.3f, 0.25f - 1f - 0.3f, 3f, -2f];
        Assert.Equal(expected, got, (a, b) => Math.Abs(a - b) < 1e-6f);
        Assert.Equal([2f, -1f, 0.5f, 3f, -2f], logits); // input untouched
    }

    [Fact]
    public void LogitBiasAddsToTheLogitAfterThePenaltiesAndSteersGreedy()
    {
        var p = new SamplingParams { RepetitionPenalty = 2f, LogitBias = [new(0, 1.5f), new(3, -10f)] };
        var state = State(p, prompt: [0]);
        float[] logits = [2f, -1f, 0.5f, 3f];
        // token 0: repetition 2/2 = 1, then +1.5; token 3: 3 - 10
        Assert.Equal([2.5f, -1f, 0.5f, -7f], new Sampler().Adjusted(logits, state), (a, b) => Math.Abs(a - b) < 1e-6f);

        Assert.Equal(3, new Sampler().Sample(logits, State(Greedy)).Token);
        Assert.Equal(0, new Sampler().Sample(logits, State(Greedy with { LogitBias = [new(3, -10f)] })).Token);
        Assert.Equal(1, new Sampler().Sample(logits, State(Greedy with { LogitBias = [new(1, 100f)] })).Token);
    }

    [Fact]
    public void LogitBiasCannotLiftAMinTokensMask()
    {
        var p = Greedy with { MinTokens = 2, LogitBias = [new(1, 100f)] };
        var state = State(p, eos: [1]);
        float[] logits = [0f, 5f, 1f];
        Assert.True(float.IsNegativeInfinity(new Sampler().Adjusted(logits, state)[1]));
        Assert.Equal(2, new Sampler().Sample(logits, state).Token);
    }

    [Fact]
    public void RepetitionPenaltyCoversPromptButFrequencyAndPresenceOnlyOutput()
    {
        float[] logits = [4f, 3.9f, 1f];
        // Token 0 in the prompt: presence/frequency do not see it, so greedy still picks it...
        var pres = State(Greedy with { PresencePenalty = 2f, FrequencyPenalty = 2f }, prompt: [0, 0, 0]);
        Assert.Equal(0, new Sampler().Sample(logits, pres).Token);
        // ...but the repetition penalty does: 4/1.1 < 3.9.
        var rep = State(Greedy with { RepetitionPenalty = 1.1f }, prompt: [0]);
        Assert.Equal(1, new Sampler().Sample(logits, rep).Token);
        // Once in the output, presence pushes it down: 4 - 0.2 < 3.9.
        pres = State(Greedy with { PresencePenalty = 0.2f });
        pres.Append(0);
        Assert.Equal(1, new Sampler().Sample(logits, pres).Token);
    }

    [Fact]
    public void PenaltiesLeaveLogprobsRaw()
    {
        var logits = RandomLogits(50, 11);
        var state = State(new SamplingParams { RepetitionPenalty = 1.7f, PresencePenalty = 1f, Logprobs = 3, Seed = 5 }, prompt: [1, 2, 3]);
        state.Append(4);
        var r = new Sampler().Sample(logits, state);
        var reference = LogSoftmax(logits);
        Assert.Equal(reference[r.Token], r.Logprob!.Value, 1e-5);
        Assert.All(r.TopLogprobs!, tl => Assert.Equal(reference[tl.TokenId], tl.Logprob, 1e-5));
    }

    [Fact]
    public void MinTokensMasksEosAndStopIdsThenStopsMasking()
    {
        // EOS 4 is the argmax, stop id 3 the runner-up; min_tokens 2 hides both for outputs 0 and 1.
        float[] logits = [0f, 1f, 2f, 5f, 6f];
        var state = State(Greedy with { MinTokens = 2, StopTokenIds = [3], MaxTokens = 10 }, eos: [4]);
        var sampler = new Sampler();
        for (int i = 0; i < 2; i++)
        {
            int t = sampler.Sample(logits, state).Token;
            Assert.Equal(2, t);
            state.Append(t);
            Assert.Null(Sampler.CheckFinish(state, t));
        }
        int last = sampler.Sample(logits, state).Token;
        Assert.Equal(4, last);
        state.Append(last);
        Assert.Equal(FinishReason.Stop, Sampler.CheckFinish(state, last));
        Assert.True(Sampler.IsStopToken(3, state));
    }

    [Fact]
    public void IgnoreEosNeitherStopsOnNorMasksEosButStopIdsStillStop()
    {
        float[] logits = [0f, 1f, 2f, 5f, 6f];
        var state = State(Greedy with { IgnoreEos = true, MinTokens = 1, StopTokenIds = [3], MaxTokens = 10 }, eos: [4]);
        var sampler = new Sampler();
        int t = sampler.Sample(logits, state).Token;
        Assert.Equal(4, t); // not masked by min_tokens: with ignore_eos it is an ordinary token
        state.Append(t);
        Assert.Null(Sampler.CheckFinish(state, t));
        Assert.False(Sampler.IsStopToken(4, state));
        Assert.True(Sampler.IsStopToken(3, state));
        Assert.Equal(FinishReason.Stop, Sampler.CheckFinish(state, 3));
    }

    [Fact]
    public void LengthFinishesAtMaxTokensAndStopWinsATie()
    {
        var state = State(Greedy with { MaxTokens = 3 }, eos: [9]);
        state.Append(1);
        state.Append(2);
        Assert.Null(Sampler.CheckFinish(state, 2));
        state.Append(3);
        Assert.Equal(FinishReason.Length, Sampler.CheckFinish(state, 3));
        var eos = State(Greedy with { MaxTokens = 1 }, eos: [9]);
        eos.Append(9);
        Assert.Equal(FinishReason.Stop, Sampler.CheckFinish(eos, 9));
    }

    [Fact]
    public void LogprobsAreTheTopNOfTheRawDistributionSortedWithTheChosenToken()
    {
        var logits = RandomLogits(1000, 21);
        var reference = LogSoftmax(logits);
        var topRef = Enumerable.Range(0, logits.Length).OrderByDescending(i => reference[i]).ThenBy(i => i).Take(5).ToArray();
        var sampler = new Sampler();
        var state = State(new SamplingParams { Logprobs = 5, Temperature = 3f, Seed = 2 });
        for (int step = 0; step < 20; step++)
        {
            var r = sampler.Sample(logits, state);
            Assert.Equal(topRef, r.TopLogprobs!.Select(t => t.TokenId));
            for (int i = 0; i < 5; i++) Assert.Equal(reference[topRef[i]], r.TopLogprobs![i].Logprob, 1e-5);
            Assert.Equal(reference[r.Token], r.Logprob!.Value, 1e-5);
            state.Append(r.Token);
        }
    }

    [Fact]
    public void LogprobsTiesGoToLowerIdsAndZeroOrNullAskForNoList()
    {
        float[] logits = [1f, 3f, 2f, 3f, 3f];
        var r = new Sampler().Sample(logits, State(Greedy with { Logprobs = 2 }));
        Assert.Equal([1, 3], r.TopLogprobs!.Select(t => t.TokenId));
        Assert.Empty(new Sampler().Sample(logits, State(Greedy with { Logprobs = 0 })).TopLogprobs!);
        var none = new Sampler().Sample(logits, State(Greedy));
        Assert.Null(none.TopLogprobs);
        Assert.Null(none.Logprob); // not asked for: not computed (issue 18: no vocabulary pass for it)
        Assert.Equal(LogSoftmax(logits)[1], new Sampler().Sample(logits, State(Greedy with { Logprobs = 0 })).Logprob!.Value, 1e-5);
    }
}
