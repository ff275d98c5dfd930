using Loom.Grains.Abstractions;
using Xunit.Abstractions;

namespace Loom.Cluster.Tests;

/// <summary>
/// A worker at capacity hands the request on: requests that all prefer one worker (same prefix)
/// fill it, then go to the other, and queue only once every batch is full. The router's load view
/// is a few hundred ms old, so this rests on the worker refusing to overfill its batch.
/// </summary>
public sealed class AtCapacityFailoverTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AFullWorkerSendsTheRequestElsewhereAndAllFullQueues()
    {
        // Batches of 2; 20 ms steps make 100 tokens last ~2 s.
        await using var c = await LoomTestCluster.StartAsync(2, LoomTestCluster.Simulated(20, 0, maxNumSeqs: 2));
        var prefix = Enumerable.Range(1, 32).ToArray(); // two full blocks: one affinity key for all
        GenerationRequest Req(int i) => new($"cap{i}", [.. prefix, 100 + i], new SamplingParams { MaxTokens = 100, Temperature = 0, IgnoreEos = true });

        var counts = new int[6];
        Task Run(int i) => Task.Run(async () => { await foreach (var _ in c.Client.GenerateAsync(Req(i), default)) Interlocked.Increment(ref counts[i]); });
        var first = Enumerable.Range(0, 4).Select(Run).ToList();
        await WaitAsync(() => counts.Take(4).All(k => k > 0));
        var stats = await c.FreshStatsAsync();
        output.WriteLine("4 requests: " + string.Join(", ", stats.Values.Select(s => $"{s.Running} running/{s.Waiting} waiting")));
        Assert.All(stats.Values, s => Assert.Equal((2, 0), (s.Running, s.Waiting)));

        // Every batch is full now: two more queue instead of bouncing forever.
        var more = Enumerable.Range(4, 2).Select(Run).ToList();
        await WaitAsync(async () => (await c.FreshStatsAsync()).Values.Sum(s => s.Waiting) == 2);
        stats = await c.FreshStatsAsync();
        output.WriteLine("6 requests: " + string.Join(", ", stats.Values.Select(s => $"{s.Running} running/{s.Waiting} waiting")));
        Assert.Equal(4, stats.Values.Sum(s => s.Running));

        await Task.WhenAll([.. first, .. more]).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.All(counts, k => Assert.Equal(100, k));
    }

    private static Task WaitAsync(Func<bool> done) => WaitAsync(() => Task.FromResult(done()));

    private static async Task WaitAsync(Func<Task<bool>> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await done())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the cluster");
            await Task.Delay(10);
        }
    }
}
