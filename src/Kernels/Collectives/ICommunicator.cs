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
}
