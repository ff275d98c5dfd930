using System.Diagnostics;
using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Xunit.Abstractions;

namespace Loom.Cluster.Tests;

/// <summary>Kill the silo serving long requests mid-stream: the streams finish on the survivors, token for token.</summary>
public sealed class FailoverTests(TinyModelFixture model, ITestOutputHelper output) : IClassFixture<TinyModelFixture>
{
    private static int[] Prompt(int seed, int length) { var r = new Random(seed); return [.. Enumerable.Range(0, length).Select(_ => r.Next(1, 256))]; }

    [Fact]
    public async Task KilledSiloMidStreamLosesNoTokensThenNoWorkerLeftIsAClearError()
    {
        // 15 ms per step keeps 150-token streams running long enough to kill their silo mid-way.
        await using var c = await LoomTestCluster.StartAsync(3, LoomTestCluster.TinyModel(model.Dir), stepDelay: TimeSpan.FromMilliseconds(15));
        var prefix = Prompt(3, 40); // same first blocks: both land on one worker
        GenerationRequest[] requests =
        [
            new("greedy", [.. prefix, 5, 6], new SamplingParams { MaxTokens = 150, Temperature = 0, IgnoreEos = true }),
            new("seeded", [.. prefix, 7], new SamplingParams { MaxTokens = 150, Temperature = 0.9f, Seed = 1234, IgnoreEos = true, Logprobs = 1 }),
            new("unseeded", [.. prefix, 8, 9, 10], new SamplingParams { MaxTokens = 150, Temperature = 0.8f, IgnoreEos = true }),
        ];
        var expected = new List<int>[2];
        for (int i = 0; i < 2; i++) expected[i] = await Tokens(c, requests[i]);

        // The run to disturb: all three at once; kill their worker after 20 tokens each.
        var got = requests.Select(_ => new List<TokenDelta>()).ToArray();
        var killed = new TaskCompletionSource<(string Key, Stopwatch Since)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var afterKill = new double[3];
        var runs = requests.Select((r, i) => Task.Run(async () =>
        {
            await foreach (var d in c.Client.GenerateAsync(r, default))
            {
                got[i].Add(d);
                if (killed.Task.IsCompleted && afterKill[i] == 0 && got[i].Count > 20) afterKill[i] = killed.Task.Result.Since.Elapsed.TotalMilliseconds;
            }
        })).ToList();
        while (got.Any(g => g.Count < 20)) await Task.Delay(5);
        var busy = (await c.FreshStatsAsync()).Single(s => s.Value.Running > 0).Key;
        var silo = c.Cluster.Silos.Single(s => s.SiloAddress.ToParsableString() == busy);
        var sw = Stopwatch.StartNew();
        await c.Cluster.KillSiloAsync(silo);
        killed.SetResult((busy, sw));
        await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"killed {busy}; streams resumed {string.Join(", ", afterKill.Select(t => $"{t:F0} ms"))} after the kill");

        for (int i = 0; i < 3; i++)
        {
            var deltas = got[i];
            Assert.Equal(150, deltas.Count);
            Assert.All(deltas, d => Assert.True(d.TokenId >= 0)); // 150 tokens: nothing duplicated, nothing missing (checked against the undisturbed run below)
            Assert.Equal(FinishReason.Length, deltas[^1].Finish);
        }
        Assert.Equal(expected[0], got[0].Select(d => d.TokenId));
        Assert.Equal(expected[1], got[1].Select(d => d.TokenId));
        Assert.All(afterKill, t => Assert.True(t > 0, "a stream did not continue after the kill"));

        // Kill the rest: a new request gets a clear "no worker" error, not a hang.
        foreach (var s in c.Cluster.Silos.Where(s => s.IsActive).ToList()) await c.Cluster.KillSiloAsync(s);
        var none = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<OverloadedException>(() => Tokens(c, requests[0])).WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"no worker left: '{e.Message}' after {none.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task SamplesOfAnNGreaterThanOneRequestResumeOneByOne()
    {
        await using var c = await LoomTestCluster.StartAsync(2, LoomTestCluster.TinyModel(model.Dir), stepDelay: TimeSpan.FromMilliseconds(15));
        var r = new GenerationRequest("n3", Prompt(5, 33), new SamplingParams { N = 3, MaxTokens = 100, Temperature = 1f, Seed = 99, IgnoreEos = true });
        var deltas = new List<TokenDelta>();
        var counts = new int[3];
        Task? kill = null;
        await foreach (var d in c.Client.GenerateAsync(r, default))
        {
            deltas.Add(d);
            counts[d.Index]++;
            if (kill is null && counts.All(k => k >= 10))
                kill = Task.Run(async () =>
                {
                    var busy = (await c.FreshStatsAsync()).Single(s => s.Value.Running > 0).Key;
                    await c.Cluster.KillSiloAsync(c.Cluster.Silos.Single(s => s.SiloAddress.ToParsableString() == busy));
                });
        }
        Assert.NotNull(kill);
        await kill;
        // Every sample completes with all its tokens, and, n > 1 now running as seeded child
        // sequences, with exactly the tokens of an undisturbed run.
        var undisturbed = new List<TokenDelta>();
        await foreach (var d in c.Client.GenerateAsync(r with { RequestId = "n3-again" }, default)) undisturbed.Add(d);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(100, deltas.Count(d => d.Index == i && d.TokenId >= 0));
            Assert.Equal(undisturbed.Where(d => d.Index == i).Select(d => d.TokenId), deltas.Where(d => d.Index == i).Select(d => d.TokenId));
        }
    }

    private static async Task<List<int>> Tokens(LoomTestCluster c, GenerationRequest r)
    {
        var t = new List<int>();
        await foreach (var d in c.Client.GenerateAsync(r, default)) t.Add(d.TokenId);
        return t;
    }
}
