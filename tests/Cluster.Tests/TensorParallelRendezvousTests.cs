using Loom.Grains.Abstractions;

namespace Loom.Cluster.Tests;

/// <summary>Multi-node TP: the NCCL unique id travels from rank 0 to the other ranks through a grain.</summary>
public sealed class TensorParallelRendezvousTests
{
    [Fact]
    public async Task OtherRanksReceiveRankZerosIdAndAMissingPublisherTimesOutClearly()
    {
        await using var c = await LoomTestCluster.StartAsync(2, LoomTestCluster.Simulated(5, 0, maxNumSeqs: 4));
        var grains = c.Cluster.Client;
        var id = Enumerable.Range(0, 128).Select(i => (byte)(255 - i)).ToArray();
        var g = grains.GetGrain<ITensorParallelRendezvousGrain>("tp-group-a");
        var waiters = Enumerable.Range(1, 3).Select(_ => g.WaitForIdAsync(TimeSpan.FromSeconds(20))).ToList();
        await Task.Delay(100);
        Assert.All(waiters, w => Assert.False(w.IsCompleted));
        await g.PublishAsync(id);
        foreach (var w in waiters) Assert.Equal(id, await w);
        Assert.Equal(id, await g.WaitForIdAsync(TimeSpan.FromSeconds(1))); // late ranks too

        await Assert.ThrowsAsync<ArgumentException>(() => g.PublishAsync(new byte[16]));
        var e = await Assert.ThrowsAsync<TimeoutException>(() => grains.GetGrain<ITensorParallelRendezvousGrain>("tp-group-b").WaitForIdAsync(TimeSpan.FromMilliseconds(300)));
        Assert.Contains("tp-group-b", e.Message);
    }
}
