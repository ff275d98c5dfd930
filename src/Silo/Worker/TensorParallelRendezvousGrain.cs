using Loom.Grains.Abstractions;
using Orleans.Concurrency;

namespace Loom.Silo.Worker;

/// <summary>
/// Hands rank 0's NCCL unique id to the other ranks of a group. Reentrant so waiters do not block
/// the publisher; the id lives in memory only (a group re-forms with a new id after a restart).
/// </summary>
[Reentrant]
public sealed class TensorParallelRendezvousGrain : Grain, ITensorParallelRendezvousGrain
{
    private readonly TaskCompletionSource<byte[]> _id = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task PublishAsync(byte[] ncclUniqueId)
    {
        if (ncclUniqueId is not { Length: 128 })
            throw new ArgumentException($"an NCCL unique id is 128 bytes, got {ncclUniqueId?.Length ?? 0}", nameof(ncclUniqueId));
        if (_id.Task.IsCompleted && !_id.Task.Result.AsSpan().SequenceEqual(ncclUniqueId))
            throw new InvalidOperationException($"group '{this.GetPrimaryKeyString()}' already has a different NCCL id");
        _id.TrySetResult(ncclUniqueId);
        return Task.CompletedTask;
    }

    public async Task<byte[]> WaitForIdAsync(TimeSpan timeout)
    {
        try { return await _id.Task.WaitAsync(timeout); }
        catch (TimeoutException) { throw new TimeoutException($"tensor-parallel group '{this.GetPrimaryKeyString()}': rank 0 did not publish its NCCL id within {timeout}"); }
    }
}
