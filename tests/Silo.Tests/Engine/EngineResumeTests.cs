using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

/// <summary>Failover support: a request resumed from k streamed tokens continues exactly as the uninterrupted run.</summary>
public sealed class EngineResumeTests(EngineFixture f) : IClassFixture<EngineFixture>
{
    private static SamplingParams Params(float temperature, ulong? seed, float repetition = 1f) =>
        new() { MaxTokens = 24, MinTokens = 20, Temperature = temperature, Seed = seed, IgnoreEos = false, RepetitionPenalty = repetition, FrequencyPenalty = 0.3f };

    [Theory]
    [InlineData(0f, null, 5)]
    [InlineData(0.9f, 42UL, 1)]
    [InlineData(0.9f, 42UL, 13)]
    [InlineData(1.2f, 7UL, 23)]
    public void ResumedRequestContinuesTheUninterruptedStream(float temperature, ulong? seed, int k)
    {
        var prompt = EngineDriver.Prompt(3, 21);
        var p = Params(temperature, seed, repetition: 1.1f);
        using var a = f.NewEngine();
        var full = EngineDriver.RunAll(a, [new GenerationRequest("full", prompt, p)])["full"];
        var expected = full.Tokens[0];
        Assert.True(expected.Count > k);

        using var b = f.NewEngine();
        var resumed = EngineDriver.RunAll(b, [new GenerationRequest("resumed", prompt, p, ResumeTokenIds: expected.Take(k).ToArray())])["resumed"];
        Assert.Equal(expected.Skip(k), resumed.Tokens[0]);
        // (Logprobs differ in the last bits: the resumed tokens are prefilled, not decoded one by one.)
        static object Key(TokenDelta d) => (d.Index, d.TokenId, d.Finish);
        Assert.Equal(full.Deltas.Skip(k).Select(Key), resumed.Deltas.Select(Key));
    }

    [Fact]
    public void ResumeRejectsNGreaterThanOneAndNothingLeftToGenerate()
    {
        using var e = f.NewEngine();
        var prompt = EngineDriver.Prompt(1, 8);
        var n2 = Assert.Throws<EngineRequestException>(() => e.Submit(new GenerationRequest("a", prompt, new SamplingParams { N = 2, MaxTokens = 4 }, ResumeTokenIds: [1])));
        Assert.Equal("n", n2.Param);
        var full = Assert.Throws<EngineRequestException>(() => e.Submit(new GenerationRequest("b", prompt, new SamplingParams { MaxTokens = 2 }, ResumeTokenIds: [1, 2])));
        Assert.Equal("resume_token_ids", full.Param);
    }
}
