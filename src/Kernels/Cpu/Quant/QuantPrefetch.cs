namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// How far ahead the int8 panel dot products software-prefetch the panel stream (codes; scales,
/// read a group at a time). Panels of a segment are contiguous, so near a panel's end this reaches
/// into the next one. At batch-1 decode the per-layer matrices are small (0.2-1 MB), and the
/// hardware prefetcher restarts on each of them too late to reach DRAM bandwidth.
/// </summary>
internal static class QuantPrefetch
{
    /// <summary>Bytes ahead in the code stream.</summary>
    public const int Codes = 4096;

    /// <summary>Floats ahead in the scale stream (one U4 group's 32 scales is 128 bytes).</summary>
    public const int Scales = 128;
}
