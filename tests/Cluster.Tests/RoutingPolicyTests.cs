using Loom.Silo.Routing;

namespace Loom.Cluster.Tests;

public sealed class RoutingPolicyTests
{
    private static readonly RoutingPolicy Policy = new(blockSize: 16, affinityBlocks: 2);

    private static WorkerLoad Idle(string key) => new(key, Running: 0, Waiting: 0, FreeBlocks: 1000, KvUsage: 0, Pending: 0);

    private static int[] Prompt(int seed, int length) { var r = new Random(seed); return [.. Enumerable.Range(0, length).Select(_ => r.Next(50000))]; }

    private static readonly WorkerLoad[] Three = [Idle("a"), Idle("b"), Idle("c")];

    [Fact]
    public void SharedFirstBlocksPickTheSameWorkerWhateverFollows()
    {
        var prefix = Prompt(1, 32);
        var picks = Enumerable.Range(0, 20).Select(i => Policy.Pick(Three, [.. prefix, .. Prompt(100 + i, 5 + i)])).Distinct().ToList();
        Assert.Single(picks);
    }

    [Fact]
    public void DifferentPrefixesSpreadOverAllWorkers()
    {
        var counts = Enumerable.Range(0, 300).Select(i => Policy.Pick(Three, Prompt(i, 40))!).GroupBy(k => k).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 60, 140));
    }

    [Fact]
    public void SaturatedPreferredWorkerFallsBackToTheLeastLoaded()
    {
        var prompt = Prompt(7, 48);
        var preferred = Policy.Pick(Three, prompt)!;
        WorkerLoad Load(string k, int running, int waiting, double kv = 0.2) => new(k, running, waiting, 500, kv, 0);
        var others = Three.Select(w => w.Key).Where(k => k != preferred).ToArray();
        // Queueing (waiting > 0) saturates it: the less loaded of the other two wins.
        WorkerLoad[] loads = [Load(preferred, 64, 3), Load(others[0], 10, 0), Load(others[1], 2, 0)];
        Assert.Equal(others[1], Policy.Pick(loads, prompt));
        // So does a nearly full KV pool.
        loads = [Load(preferred, 1, 0, kv: 0.95), Load(others[0], 3, 0), Load(others[1], 9, 0)];
        Assert.Equal(others[0], Policy.Pick(loads, prompt));
        // A busy but not saturated preferred worker keeps its affinity.
        loads = [Load(preferred, 40, 0), Load(others[0], 0, 0), Load(others[1], 0, 0)];
        Assert.Equal(preferred, Policy.Pick(loads, prompt));
        // When everyone is saturated the request queues on the least loaded.
        loads = [Load(preferred, 64, 9), Load(others[0], 64, 2), Load(others[1], 64, 5)];
        Assert.Equal(others[0], Policy.Pick(loads, prompt));
        // A full batch (running plus just-routed reaches max_num_seqs) saturates it before anything queues.
        WorkerLoad Batch(string k, int running, int pending) => new(k, running, 0, 500, 0.2, pending, MaxNumSeqs: 8);
        loads = [Batch(preferred, 6, 2), Batch(others[0], 7, 0), Batch(others[1], 3, 1)];
        Assert.Equal(others[1], Policy.Pick(loads, prompt));
        loads = [Batch(preferred, 6, 1), Batch(others[0], 0, 0), Batch(others[1], 0, 0)];
        Assert.Equal(preferred, Policy.Pick(loads, prompt));
    }

    [Fact]
    public void PromptsWithoutAFullBlockGoToTheLeastLoaded()
    {
        WorkerLoad[] loads = [new("a", 5, 0, 100, 0.1, 0), new("b", 1, 0, 100, 0.1, 0), new("c", 1, 0, 100, 0.1, 2)];
        Assert.Equal("b", Policy.Pick(loads, Prompt(3, 15)));
    }

    [Fact]
    public void RendezvousMovesOnlyTheLeavingWorkersKeysAndAJoinerTakesAFairShare()
    {
        var prompts = Enumerable.Range(0, 400).Select(i => Prompt(i, 32)).ToList();
        var before = prompts.Select(p => Policy.Pick(Three, p)).ToList();
        // "b" leaves: only its prompts move.
        WorkerLoad[] two = [Idle("a"), Idle("c")];
        var after = prompts.Select(p => Policy.Pick(two, p)).ToList();
        for (int i = 0; i < prompts.Count; i++)
            if (before[i] != "b") Assert.Equal(before[i], after[i]);
        // "d" joins: prompts move only to "d", about a quarter of them.
        WorkerLoad[] four = [.. Three, Idle("d")];
        var joined = prompts.Select(p => Policy.Pick(four, p)).ToList();
        int moved = 0;
        for (int i = 0; i < prompts.Count; i++)
            if (joined[i] != before[i]) { Assert.Equal("d", joined[i]); moved++; }
        Assert.InRange(moved, 60, 140);
    }

    [Fact]
    public void ExcludedAndEmptyPools()
    {
        var prompt = Prompt(1, 40);
        var preferred = Policy.Pick(Three, prompt)!;
        var next = Policy.Pick(Three, prompt, [preferred]);
        Assert.NotNull(next);
        Assert.NotEqual(preferred, next);
        Assert.Null(Policy.Pick(Three, prompt, ["a", "b", "c"]));
        Assert.Null(Policy.Pick([], prompt));
    }
}
