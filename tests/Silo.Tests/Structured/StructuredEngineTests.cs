using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Structured;
using Loom.Silo.Tests.Engine;

namespace Loom.Silo.Tests.Structured;

/// <summary>
/// Structured outputs on the engine (the tiny model, a byte vocabulary): a request resumed after
/// failover walks its constraint from where it was, and a finished constraint ends the sequence
/// even when min_tokens or ignore_eos would otherwise keep it going.
/// </summary>
public sealed class StructuredEngineTests(EngineFixture f) : IClassFixture<EngineFixture>
{
    private IReadOnlyList<int> Eos => f.Model.Config.EosTokenIds;

    private EngineLoop Engine()
    {
        var engine = f.NewEngine();
        StructuredOutputs.Attach(engine.Frontend, () => TokenVocabulary.ByteLevel(f.Model.Config.VocabSize, Eos), Eos);
        return engine;
    }

    private static StructuredOutput Regex(string pattern) => new(StructuredOutputKind.Regex, pattern);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(15)]
    public void StructuredResumedWalkGivesTheUninterruptedMasks(int k)
    {
        // The walk as one worker saw it, mask by mask...
        var rng = new Random(k + 1);
        var spec = StructuredTestKit.Specs[0];
        var first = new ConstraintCache(StructuredTestKit.Vocabulary).Get(spec).Start([StructuredTestKit.Eos]);
        var masks = new List<uint[]>();
        var tokens = new List<int>();
        for (int step = 0; step <= k; step++)
        {
            masks.Add(StructuredTestKit.Allowed(first));
            var notEos = (uint[])masks[^1].Clone();
            notEos[StructuredTestKit.Eos >> 5] &= ~(1u << (StructuredTestKit.Eos & 31)); // the walk goes on past k
            int token = StructuredTestKit.Pick(notEos, rng);
            tokens.Add(token);
            first.Advance(token);
        }
        Assert.DoesNotContain(StructuredTestKit.Eos, tokens.Take(k));
        // ...and on another worker (a fresh cache), replayed from the k tokens it streamed.
        var resumed = new ConstraintCache(StructuredTestKit.Vocabulary).Get(spec).Start([StructuredTestKit.Eos], tokens.Take(k).ToArray());
        Assert.Equal(masks[k], StructuredTestKit.Allowed(resumed));
        resumed.Advance(tokens[k]);
        first = new ConstraintCache(StructuredTestKit.Vocabulary).Get(spec).Start([StructuredTestKit.Eos], tokens);
        Assert.Equal(StructuredTestKit.Allowed(first), StructuredTestKit.Allowed(resumed));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(6)]
    [InlineData(17)]
    public void StructuredResumedRequestContinuesTheUninterruptedStream(int k)
    {
        var prompt = EngineDriver.Prompt(4, 15);
        var p = new SamplingParams { MaxTokens = 40, Temperature = 0.9f, Seed = 42, Structured = Regex("[a-z]{3,6}( [a-z]{3,6}){3,5}") };
        using var a = Engine();
        var full = EngineDriver.RunAll(a, [new GenerationRequest("full", prompt, p)])["full"];
        var expected = full.Tokens[0];
        Assert.True(expected.Count > k, $"only {expected.Count} tokens");
        Assert.All(expected.Take(expected.Count - 1), t => Assert.True(t == ' ' || t is >= 'a' and <= 'z', $"token {t}"));

        using var b = Engine();
        var resumed = EngineDriver.RunAll(b, [new GenerationRequest("resumed", prompt, p, ResumeTokenIds: expected.Take(k).ToArray())])["resumed"];
        Assert.Equal(expected.Skip(k), resumed.Tokens[0]);
        Assert.Equal(full.Deltas[^1].Finish, resumed.Deltas[^1].Finish);
    }

    [Fact]
    public void StructuredSequencesUseWhatPrepareCompiledEvenAfterEviction()
    {
        using var engine = f.NewEngine();
        var handle = StructuredOutputs.Attach(engine.Frontend, () => StructuredTestKit.Vocabulary, [StructuredTestKit.Eos], budgetBytes: 1);
        var r = new GenerationRequest("r", [1, 2, 3], new SamplingParams { MaxTokens = 4, N = 2, Structured = StructuredTestKit.Specs[1] });
        engine.Frontend.Prepare!(r);
        var compiled = handle.Cache.Get(StructuredTestKit.Specs[1]);
        handle.Cache.Get(StructuredTestKit.Specs[2]); // a one-byte budget: compiling another evicts it
        Assert.NotSame(compiled, handle.Cache.Get(StructuredTestKit.Specs[1]));
        Assert.Same(compiled, Assert.IsType<TokenConstraint>(engine.Frontend.Constraints!(r, 0)).Compiled);
        Assert.Same(compiled, Assert.IsType<TokenConstraint>(engine.Frontend.Constraints!(r, 1)).Compiled);
    }

    [Fact]
    public void StructuredFinishedConstraintAllowsEosBeforeMinTokens()
    {
        using var engine = Engine();
        var p = new SamplingParams { MaxTokens = 20, MinTokens = 10, Temperature = 0.8f, Seed = 1, Structured = Regex("ok") };
        var output = EngineDriver.RunAll(engine, [new GenerationRequest("r", EngineDriver.Prompt(2, 9), p)])["r"];
        // The constraint wins: "ok" then EOS, 3 tokens although min_tokens is 10.
        Assert.Equal(['o', 'k', Eos[0]], output.Tokens[0]);
        Assert.Equal(FinishReason.Stop, output.Deltas[^1].Finish);
    }

    [Fact]
    public void StructuredFinishedConstraintStopsUnderIgnoreEos()
    {
        using var engine = Engine();
        var p = new SamplingParams { MaxTokens = 20, IgnoreEos = true, Temperature = 0.8f, Seed = 1, Structured = Regex("ok") };
        var output = EngineDriver.RunAll(engine, [new GenerationRequest("r", EngineDriver.Prompt(2, 9), p)])["r"];
        // Not EOS repeated up to max_tokens: nothing may follow the output, so it stops.
        Assert.Equal(['o', 'k', Eos[0]], output.Tokens[0]);
        Assert.Equal(FinishReason.Stop, output.Deltas[^1].Finish);
    }

    [Fact]
    public void StructuredEosTakenWhereMoreMayFollowStopsUnderIgnoreEos()
    {
        int eos = Eos[0];
        var compiled = new CompiledConstraint(Regex("a+"), TokenVocabulary.ByteLevel(f.Model.Config.VocabSize, Eos));
        var state = new SamplingState(new SamplingParams { MaxTokens = 10, IgnoreEos = true }, [], [eos]) { Constraint = compiled.Start(Eos) };
        state.Append('a');
        Assert.Null(state.Finish('a')); // accepting, but more a's may follow
        state.Append(eos);
        Assert.Equal(FinishReason.Stop, state.Finish(eos)); // EOS ended the output: nothing may follow it

        // Without a constraint, ignore_eos still ignores EOS; with min_tokens, an unfinished constraint's EOS stays masked.
        var free = new SamplingState(new SamplingParams { MaxTokens = 10, IgnoreEos = true }, [], [eos]);
        free.Append(eos);
        Assert.Null(free.Finish(eos));
        var min = new SamplingState(new SamplingParams { MaxTokens = 10, MinTokens = 5 }, [], [eos]) { Constraint = compiled.Start(Eos) };
        min.Append('a');
        Assert.True(min.StopsMasked);
    }
}
