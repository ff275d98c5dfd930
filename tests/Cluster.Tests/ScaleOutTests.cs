using System.Diagnostics;
using Loom.Grains.Abstractions;
using Xunit.Abstractions;

namespace Loom.Cluster.Tests;

/// <summary>The simulated backend: aggregate throughput grows with the number of silos.</summary>
public sealed class ScaleOutTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ThroughputScalesWithSilosOnTheSimulatedBackend()
    {
        var rates = new Dictionary<int, double>();
        foreach (var n in new[] { 1, 2, 4 })
        {
            // 20 ms per step, 4 sequences per worker: one worker does 200 tokens/s however fast the host is.
            await using var c = await LoomTestCluster.StartAsync(n, LoomTestCluster.Simulated(20, 0, maxNumSeqs: 4));
            // Best of three runs: the capacity is what scales; a stall of the shared CI host (other test
            // assemblies run beside this one) during a ~1 s run would otherwise halve a figure.
            for (int run = 0; run < 3; run++)
            {
                var rng = new Random(n * 10 + run);
                var requests = Enumerable.Range(0, 32).Select(i => new GenerationRequest($"r{run}-{i}",
                    [.. Enumerable.Range(0, 12).Select(_ => rng.Next(1, 256))], new SamplingParams { MaxTokens = 20, Temperature = 0, IgnoreEos = true })).ToList();
                var sw = Stopwatch.StartNew();
                var counts = await Task.WhenAll(requests.Select(async r =>
                {
                    int k = 0;
                    await foreach (var _ in c.Client.GenerateAsync(r, default)) k++;
                    return k;
                }));
                double rate = counts.Sum() / sw.Elapsed.TotalSeconds;
                rates[n] = Math.Max(rates.GetValueOrDefault(n), rate);
                output.WriteLine($"{n} silo(s), run {run + 1}: {rate:F0} tokens/s");
            }
        }
        output.WriteLine($"scaling 1→2: {rates[2] / rates[1]:F2}x, 1→4: {rates[4] / rates[1]:F2}x");
        Assert.True(rates[2] / rates[1] >= 1.6, $"1→2 silos scaled {rates[2] / rates[1]:F2}x");
        Assert.True(rates[4] / rates[1] >= 2.4, $"1→4 silos scaled {rates[4] / rates[1]:F2}x");
    }
}
