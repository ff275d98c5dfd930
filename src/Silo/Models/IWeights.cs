using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>Where a model's layers take their tensors from: a checkpoint, or one tensor-parallel shard of it.</summary>
public interface IWeights
{
    /// <summary>The tensor called <paramref name="name"/>, checked against <paramref name="expectedShape"/> when given.</summary>
    WeightView Get(string name, params int[] expectedShape);

    bool Contains(string name);
}
