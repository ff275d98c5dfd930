namespace Loom.Kernels.Cpu.Quant;

/// <summary>
/// How far ahead the int8 panel dot products software-prefetch a segment's code stream. Panels of a
/// segment are contiguous, so near a panel's end this reaches into the next one (the next panel's
/// scale arrays are prefetched by <c>QuantGemm</c>). At batch-1 decode the per-layer matrices are
/// small (0.2-1 MB), and the hardware prefetcher restarts on each of them too late to reach DRAM bandwidth.
/// </summary>
internal static class QuantPrefetch
{
    /// <summary>Bytes ahead in the code stream.</summary>
    public const int Codes = 4096;
}
