using Loom.Grains.Abstractions;

namespace Loom.Cluster.Tests;

/// <summary>Three silos on the tiny model: placement, streaming, affinity, spreading, bad input, cancellation.</summary>
public sealed class ClusterTests(TinyModelFixture model) : IClassFixture<TinyModelFixture>
{
    private static int[] Prompt(int seed, int length) { var r = new Random(seed); return [.. Enumerable.Range(0, length).Select(_ => r.Next(1, 256))]; }

    private static GenerationRequest Req(string id, int[] prompt, int maxTokens, float temperature = 0, ulong? seed = null) =>
        new(id, prompt, new SamplingParams { MaxTokens = maxTokens, Temperature = temperature, Seed = seed, IgnoreEos = true });

    [Fact]
    public async Task ThreeSilosServeSpreadAffinityBadInputAndCancel()
    {
        await using var c = await LoomTestCluster.StartAsync(3, LoomTestCluster.TinyModel(model.Dir));

        // Exactly one worker per silo, each on its own silo.
        var keys = (await c.WorkerStatsAsync()).Keys.Order().ToList();
        Assert.Equal(c.Cluster.Silos.Select(s => s.SiloAddress.ToParsableString()).Order(), keys);

        // A completion streams: one delta per token, the last one finishing it.
        var deltas = new List<TokenDelta>();
        await foreach (var d in c.Client.GenerateAsync(Req("one", Prompt(1, 20), 12), default)) deltas.Add(d);
        Assert.Equal(12, deltas.Count);
        Assert.All(deltas, d => Assert.True(d.TokenId >= 0));
        Assert.Equal(FinishReason.Length, deltas[^1].Finish);

        // Distinct prompts spread over all workers.
        var before = await c.FreshStatsAsync();
        await Task.WhenAll(Enumerable.Range(0, 48).Select(i => Drain(c, Req($"spread{i}", Prompt(100 + i, 40), 4))));
        var after = await c.FreshStatsAsync();
        Assert.All(keys, k => Assert.True(after[k].GenerationTokens > before[k].GenerationTokens, $"worker {k} got nothing"));

        // Shared-prefix requests land on one worker and hit its prefix cache.
        var prefix = Prompt(7, 48);
        await c.WaitIdleAsync();
        before = await c.FreshStatsAsync();
        for (int i = 0; i < 6; i++) await Drain(c, Req($"shared{i}", [.. prefix, .. Prompt(200 + i, 7)], 3));
        after = await c.FreshStatsAsync();
        var served = keys.Where(k => after[k].GenerationTokens > before[k].GenerationTokens).ToList();
        Assert.Single(served);
        Assert.True(after[served[0]].PrefixCacheHits - before[served[0]].PrefixCacheHits >= 5 * 48, "shared prefix blocks were not reused");

        // Bad input is an InvalidRequestException naming the parameter (a 400), not a failover.
        var bad = await Assert.ThrowsAsync<Loom.Gateway.Serving.InvalidRequestException>(() => Drain(c, Req("bad", Prompt(1, 10), 10_000)));
        Assert.Equal("max_tokens", bad.Param);

        // A cancelled stream frees its blocks on the worker.
        using var cts = new CancellationTokenSource();
        int got = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in c.Client.GenerateAsync(Req("cancel", Prompt(9, 30), 400), cts.Token))
                if (++got == 3) cts.Cancel();
        });
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while ((await c.FreshStatsAsync()).Values.Any(s => s.UsedBlocks > 0 || s.Running > 0) && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.All((await c.FreshStatsAsync()).Values, s => Assert.Equal(0, s.Running));
    }

    private static async Task Drain(LoomTestCluster c, GenerationRequest r)
    {
        await foreach (var _ in c.Client.GenerateAsync(r, default)) { }
    }
}
