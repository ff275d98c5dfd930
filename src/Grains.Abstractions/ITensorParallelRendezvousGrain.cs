using Orleans;

namespace Loom.Grains.Abstractions;

/// <summary>
/// Where the ranks of one multi-node tensor-parallel group meet (keyed by the group's name): rank 0
/// publishes the 128-byte NCCL unique id, every other rank waits for it.
/// </summary>
public interface ITensorParallelRendezvousGrain : IGrainWithStringKey
{
    Task PublishAsync(byte[] ncclUniqueId);

    /// <summary>The published id, waiting up to <paramref name="timeout"/>; a TimeoutException names the group.</summary>
    Task<byte[]> WaitForIdAsync(TimeSpan timeout);
}
