using Loom.Grains.Abstractions;
using Loom.Silo.Structured;
using static Loom.Silo.Tests.Structured.StructuredTestKit;

namespace Loom.Silo.Tests.Structured;

/// <summary>
/// The constraint cache's byte budget: what it keeps stays within it (plus the one mask being handed
/// out), and evicting constraints or dropping masks never changes a mask, even for sequences still
/// walking an evicted constraint or walking from several threads at once.
/// </summary>
public sealed class StructuredCacheBudgetTests
{
    // Unbounded compiles of the same specs (no budget: nothing is ever dropped), fresh for each test.
    private readonly Dictionary<StructuredOutput, CompiledConstraint> References = Specs.ToDictionary(s => s, s => new CompiledConstraint(s, Vocabulary));

    private long MaskBytes => References[Specs[0]].Dfa.MaskBytes;

    [Fact]
    public void StructuredSmallBudgetKeepsBytesBoundedAndMasksExact()
    {
        const long budget = 400_000;
        var cache = new ConstraintCache(Vocabulary, budgetBytes: budget);
        var rng = new Random(3);
        long peak = 0;
        void Check()
        {
            long bytes = cache.Bytes;
            peak = Math.Max(peak, bytes);
            Assert.True(bytes <= budget + MaskBytes, $"{bytes} bytes kept, over the budget {budget} + one mask {MaskBytes}");
        }
        for (int walk = 0; walk < 60; walk++)
        {
            var spec = Specs[rng.Next(Specs.Length)];
            Walk(cache.Get(spec).Start([Eos]), References[spec].Start([Eos]), rng, 80, Check);
            Check();
        }
        // The budget really bit: unbounded, the same walks keep several times as much.
        long unbounded = References.Values.Sum(r => r.Dfa.Bytes);
        Assert.True(unbounded > 3 * budget, $"the walks only needed {unbounded} bytes");
        Assert.True(peak > budget / 2, $"the cache never filled ({peak} bytes)");
        Assert.InRange(cache.Count, 1, Specs.Length);
    }

    [Fact]
    public void StructuredConstraintEvictedMidWalkKeepsGivingCorrectMasks()
    {
        var cache = new ConstraintCache(Vocabulary, budgetBytes: 300_000);
        var rng = new Random(5);
        var spec = Specs[0];
        var walked = cache.Get(spec);
        var c = walked.Start([Eos]);
        var reference = References[spec].Start([Eos]);
        Walk(c, reference, rng, 6);
        long before = walked.Dfa.Bytes;

        // Other constraints fill the budget: the walked one is the least recently used, so it goes.
        foreach (var other in Specs.Skip(1))
            Walk(cache.Get(other).Start([Eos]), References[other].Start([Eos]), rng, 60);
        Assert.True(walked.Dfa.Bytes < before, "the walked constraint's masks were not dropped");

        // The sequence goes on (its masks are computed again), and a new request compiles the spec afresh.
        Walk(c, reference, rng, 60);
        Assert.NotSame(walked, cache.Get(spec));
        Assert.True(cache.Bytes <= cache.BudgetBytes + MaskBytes);
    }

    [Fact]
    public void StructuredOneConstraintOverTheBudgetDropsItsOwnMasks()
    {
        var cache = new ConstraintCache(Vocabulary, budgetBytes: 200_000);
        var rng = new Random(9);
        var spec = Specs[5];
        for (int walk = 0; walk < 12; walk++)
            Walk(cache.Get(spec).Start([Eos]), References[spec].Start([Eos]), rng, 80,
                () => Assert.True(cache.Bytes <= cache.BudgetBytes + MaskBytes, $"{cache.Bytes} bytes kept"));
        Assert.Equal(1, cache.Count); // alone over the budget, it stays cached and drops its own masks instead
        Assert.True(References[spec].Dfa.Bytes > 2 * cache.BudgetBytes, $"the walks only needed {References[spec].Dfa.Bytes} bytes");
    }

    [Fact]
    public async Task StructuredConcurrentWalksNeitherDeadlockNorCorruptMasks()
    {
        const long budget = 300_000;
        var cache = new ConstraintCache(Vocabulary, budgetBytes: budget);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        long peak = 0;
        void Check()
        {
            long bytes = cache.Bytes;
            Assert.True(bytes <= budget + MaskBytes, $"{bytes} bytes kept, over the budget {budget} + one mask {MaskBytes}");
            for (long seen = Interlocked.Read(ref peak); bytes > seen; seen = Interlocked.Read(ref peak))
                if (Interlocked.CompareExchange(ref peak, bytes, seen) == seen) break;
        }
        var tasks = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            var rng = new Random(100 + t);
            for (int walk = 0; walk < 25 && !cts.IsCancellationRequested; walk++)
            {
                var spec = Specs[rng.Next(Specs.Length)];
                Walk(cache.Get(spec).Start([Eos]), References[spec].Start([Eos]), rng, 60, Check);
            }
        }, cts.Token)).ToArray();
        // Bounded: a deadlock fails the test (TimeoutException) instead of hanging the run.
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(90));
        Assert.False(cts.IsCancellationRequested, "the walks ran out of time");
        Assert.True(peak > budget / 2, $"the cache never filled ({peak} bytes): nothing was evicted concurrently");
    }
}
