namespace Loom.Kernels;

/// <summary>
/// A weight matrix W[N, K] (HF layout: out_features × in_features) prepared by a backend for
/// y = x·Wᵀ. The backend chooses the layout (the CPU packs K-major panels; CUDA keeps row-major
/// for cuBLAS). Several checkpoint tensors may be fused along N (q/k/v, gate/up).
/// </summary>
public abstract class LinearWeight : IDisposable
{
    protected LinearWeight(int outFeatures, int inFeatures, DType dtype)
    {
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        DType = dtype;
    }

    public int OutFeatures { get; }
    public int InFeatures { get; }
    public DType DType { get; }

    /// <summary>Bytes the prepared weight occupies (what one full pass over it reads).</summary>
    public abstract long ByteLength { get; }

    public abstract void Dispose();
}
