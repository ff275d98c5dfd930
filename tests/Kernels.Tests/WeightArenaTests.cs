using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

/// <summary>Weights come from 2 MiB-aligned, huge-page-advised slabs that small layers share and that are freed with their last weight.</summary>
public unsafe class WeightArenaTests
{
    private const long HugePage = 2 << 20;

    [Fact]
    public void ALargeWeightHasItsOwnHugePageAlignedSlabFreedWithIt()
    {
        if (!OperatingSystem.IsLinux()) return; // elsewhere the arena is plain aligned memory, covered by every kernel test
        long bytes = (12L << 20) + 100;
        byte* p = (byte*)WeightArena.Alloc(bytes);
        var slab = WeightArena.SlabOf(p) ?? throw new Xunit.Sdk.XunitException("no slab for a live weight");
        Assert.Equal((nint)p, slab.Base);
        Assert.Equal(0, slab.Base % HugePage);
        Assert.Equal(14L << 20, slab.Size); // rounded up to whole huge pages
        for (long i = 0; i < bytes; i += 4093) Assert.Equal(0, p[i]);
        WeightArena.Release(p);
        Assert.Null(WeightArena.SlabOf(p));
        Assert.Throws<InvalidOperationException>(() => WeightArena.Release(p));
    }

    [Fact]
    public void SmallWeightsShareSlabsWithoutOverlapAndAreZeroed()
    {
        if (!OperatingSystem.IsLinux()) return;
        var sizes = Enumerable.Range(0, 40).Select(i => 700_000 + 37 * i).ToArray();
        var ptrs = sizes.Select(n => (nint)WeightArena.Alloc(n)).ToArray();
        var slabs = ptrs.Select(x => WeightArena.SlabOf((void*)x)!.Value).ToArray();
        // 40 × 0.7 MB = 28 MB: they fit in one or two 32 MiB slabs, never a slab (2 MiB) each.
        Assert.InRange(slabs.Distinct().Count(), 1, 3);
        for (int i = 0; i < ptrs.Length; i++)
        {
            Assert.Equal(0, ptrs[i] % 64);
            Assert.Equal(0, slabs[i].Base % HugePage);
            Assert.InRange(ptrs[i], slabs[i].Base, slabs[i].Base + (nint)slabs[i].Size - sizes[i]);
            var span = new Span<byte>((void*)ptrs[i], sizes[i]);
            Assert.True(span.IndexOfAnyExcept((byte)0) < 0, $"weight {i} is not zeroed");
            span.Fill((byte)(i + 1));
        }

        for (int i = 0; i < ptrs.Length; i++)
            Assert.True(new Span<byte>((void*)ptrs[i], sizes[i]).IndexOfAnyExcept((byte)(i + 1)) < 0, $"weight {i} was overwritten by a neighbour");
        foreach (var x in ptrs) WeightArena.Release((void*)x);
        Assert.All(ptrs, x => Assert.Null(WeightArena.SlabOf((void*)x)));
    }
}
