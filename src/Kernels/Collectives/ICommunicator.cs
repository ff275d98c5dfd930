namespace Loom.Kernels.Collectives;

/// <summary>
/// One rank of a tensor-parallel group. Every rank calls each collective in the same order with
/// tensors of the same shape; the call returns when the result is in place on this rank.
/// </summary>
public interface ICommunicator : IDisposable
{
    int Rank { get; }
    int WorldSize { get; }

    /// <summary>In place: every rank's F32 <paramref name="tensor"/> becomes the element-wise sum over all ranks.</summary>
    void AllReduceSum(Tensor tensor);

    /// <summary>
    /// Gives up on the group: partners blocked in a collective, or entering one later, fail at once
    /// instead of waiting for a rank that will never arrive. The group cannot be used afterwards.
    /// Safe to call from any thread, more than once.
    /// </summary>
    void Abort();
}
