using Loom.Grains.Abstractions;
using Loom.Silo.Configuration;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Hosting;
using Loom.Silo.Worker;
using Loom.Silo.Models;
using Loom.Tools.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace Loom.Silo.Tests.Models;

/// <summary>
/// engine.tensor_parallel_size in a worker: the engine (scheduler, paged KV, n &gt; 1 block copies,
/// sampling) over CPU shards joined by the in-process all-reduce gives TP=1's tokens.
/// </summary>
public sealed class TensorParallelWorkerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-tp-worker-").FullName;

    public TensorParallelWorkerTests() =>
        ModelGenerator.Generate(ModelPresets.Tiny with { Vocab = 512 }, _dir, new GenerateOptions { Seed = 9 });

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private LoomOptions Options(int tp) => new()
    {
        Model = new() { Path = _dir, Name = "tiny" },
        Device = "cpu",
        Engine = new() { TensorParallelSize = tp, KvCacheBytes = 4L * 1024 * 1024, Threads = 2, MaxNumSeqs = 8 },
    };

    private static async Task<Dictionary<string, List<int>[]>> Serve(WorkerEngine worker, IReadOnlyList<GenerationRequest> load)
    {
        await worker.LoadAsync();
        var runs = load.Select(async r =>
        {
            var tokens = Enumerable.Range(0, r.Sampling.N).Select(_ => new List<int>()).ToArray();
            await foreach (var d in worker.Engine.Submit(r))
                if (d.TokenId >= 0) tokens[d.Index].Add(d.TokenId);
            return (r.RequestId, tokens);
        });
        return (await Task.WhenAll(runs)).ToDictionary(x => x.RequestId, x => x.tokens);
    }

    [Fact]
    public async Task TwoShardsServeTheSameTokensAsOne()
    {
        var rng = new Random(3);
        var load = Enumerable.Range(0, 12).Select(i => new GenerationRequest($"r{i}", [.. Enumerable.Range(0, 5 + i * 13 % 40).Select(_ => rng.Next(1, 512))],
            new SamplingParams { MaxTokens = 6 + i % 5, Temperature = i % 3 == 0 ? 0.8f : 0, Seed = (ulong)i, N = i == 4 ? 2 : 1, IgnoreEos = true })).ToList();
        using var one = new WorkerEngine(Options(1), NullLogger<WorkerEngine>.Instance);
        using var two = new WorkerEngine(Options(2), NullLogger<WorkerEngine>.Instance);
        var want = await Serve(one, load);
        var got = await Serve(two, load);
        foreach (var r in load)
            for (int i = 0; i < r.Sampling.N; i++)
            {
                Assert.Equal(r.Sampling.MaxTokens, got[r.RequestId][i].Count);
                Assert.Equal(want[r.RequestId][i], got[r.RequestId][i]);
            }
        var stats = two.Engine.GetStats();
        Assert.Equal(0, stats.UsedBlocks);
        Assert.Equal(0, stats.Running);
    }

    [Fact]
    public async Task AShardCountThatDoesNotDivideTheHeadsNamesTheSetting()
    {
        using var three = new WorkerEngine(Options(3), NullLogger<WorkerEngine>.Instance);
        var e = await Assert.ThrowsAsync<LoomConfigException>(() => three.LoadAsync());
        Assert.Equal("engine.tensor_parallel_size", e.Key);
        Assert.Contains("does not divide", e.Message);
        Assert.Equal(("engine.tensor_parallel_size", "must be at least 1, got 0"), Options(0).Validate());
    }
}
