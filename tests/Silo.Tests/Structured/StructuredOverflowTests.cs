using Loom.Grains.Abstractions;
using Loom.Silo.Structured;
using static Loom.Silo.Tests.Structured.StructuredTestKit;

namespace Loom.Silo.Tests.Structured;

/// <summary>An automaton that outgrows its state limit ends its one sequence, never the engine step.</summary>
public sealed class StructuredOverflowTests
{
    [Fact]
    public void StructuredOverflowEndsTheWalkWithEosInsteadOfThrowing()
    {
        var spec = new StructuredOutput(StructuredOutputKind.Regex, "[a-z]{0,60}");
        var small = new CompiledConstraint(spec, Vocabulary, maxDfaStates: 12);
        var walk = small.Start([Eos]);
        var rng = new Random(3);
        int steps = 0;
        while (walk.Overflow is null && steps++ < 200)
        {
            int token = Pick(Allowed(walk), rng);
            if (token is < 0 || token == Eos) break;
            walk.Advance(token);
        }
        Assert.NotNull(walk.Overflow);
        Assert.Contains("12 automaton states", walk.Overflow);
        Assert.True(walk.IsComplete);
        // Only EOS is left, so the sequence stops at its next token.
        var allowed = Allowed(walk);
        Assert.Equal(1, allowed.Sum(w => System.Numerics.BitOperations.PopCount(w)));
        Assert.NotEqual(0u, allowed[Eos >> 5] & (1u << (Eos & 31)));
    }

    [Fact]
    public void StructuredOverflowWhileReplayingResumedTokensDoesNotThrow()
    {
        var spec = new StructuredOutput(StructuredOutputKind.Regex, "[a-z]{0,60}");
        var resumed = Enumerable.Repeat((int)'a', 40).ToArray();
        var walk = new CompiledConstraint(spec, Vocabulary, maxDfaStates: 12).Start([Eos], resumed);
        Assert.NotNull(walk.Overflow);
        Assert.True(walk.IsComplete);
        // The same replay within the limit follows the automaton.
        var roomy = new CompiledConstraint(spec, Vocabulary).Start([Eos], resumed);
        Assert.Null(roomy.Overflow);
        Assert.False(roomy.IsComplete);
    }
}
