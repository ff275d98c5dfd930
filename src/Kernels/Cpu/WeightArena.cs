using System.Runtime.InteropServices;

namespace Loom.Kernels.Cpu;

/// <summary>
/// Memory for weights, which every decode step streams from DRAM: carved from 2 MiB-aligned slabs
/// advised MADV_HUGEPAGE, so the stream crosses a 2 MiB page instead of a 4 KiB one (a TLB miss and
/// a hardware-prefetcher stop each). Linux distributions default transparent huge pages to
/// "madvise", so without the advice weights sit in 4 KiB pages. Measured on smollm2-135m (2
/// threads, AVX-512): batch-1 decode +5-10%. A slab holds many small layers (a 135M model's are
/// 0.7-3.5 MiB), so rounding each to 2 MiB does not waste a third of the memory.
/// </summary>
/// <remarks>
/// A slab is freed when its last allocation is; a model that is unloaded gives its slabs back.
/// Slabs are anonymous mappings, so their pages arrive zeroed from the kernel and allocations (bump
/// pointers, never reused) need no clearing of their own: clearing them again was a tenth of loading
/// a quantized model. Elsewhere than Linux this is plain zeroed memory; where madvise fails, small pages.
/// </remarks>
internal static unsafe class WeightArena
{
    private const long SlabBytes = 32L << 20;
    private const nuint HugePage = 2 << 20;

    private static readonly Lock Gate = new();
    private static readonly Dictionary<nint, Slab> Owners = [];
    private static Slab? _current;

    private sealed class Slab
    {
        public byte* Base;
        public long Size;
        public long Used;
        public int Live;
    }

    /// <summary>The slab (start, bytes) that holds allocation <paramref name="p"/>; null when it is not a live one.</summary>
    internal static (nint Base, long Size)? SlabOf(void* p)
    {
        lock (Gate) return Owners.TryGetValue((nint)p, out var s) ? ((nint)s.Base, s.Size) : null;
    }

    /// <summary>Zeroed, 64-byte aligned memory of at least <paramref name="bytes"/> bytes; free with <see cref="Release"/>.</summary>
    public static void* Alloc(long bytes)
    {
        if (!OperatingSystem.IsLinux()) return NativeBuffer.Alloc(bytes);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long size = Math.Max(64, (bytes + 63) & ~63L);
        lock (Gate)
        {
            Slab slab;
            if (size > SlabBytes / 4) slab = NewSlab(size); // a large layer gets its own slab, no tail left behind
            else
            {
                if (_current is null || _current.Used + size > _current.Size) _current = NewSlab(SlabBytes);
                slab = _current;
            }

            byte* p = slab.Base + slab.Used;
            slab.Used += size;
            slab.Live++;
            Owners[(nint)p] = slab;
            return p;
        }
    }

    /// <summary>Frees memory from <see cref="Alloc"/>; null is ignored.</summary>
    public static void Release(void* p)
    {
        if (p == null) return;
        if (!OperatingSystem.IsLinux())
        {
            NativeBuffer.Release(p);
            return;
        }

        lock (Gate)
        {
            if (!Owners.Remove((nint)p, out var slab)) throw new InvalidOperationException("not a weight-arena allocation, or freed twice");
            if (--slab.Live > 0) return;
            if (ReferenceEquals(slab, _current)) _current = null;
            _ = munmap(slab.Base, (nuint)slab.Size);
        }
    }

    private static Slab NewSlab(long bytes)
    {
        nuint size = ((nuint)bytes + HugePage - 1) & ~(HugePage - 1);
        // Over-map by a huge page and trim both ends, so the slab starts on a 2 MiB boundary.
        var raw = (byte*)mmap(null, size + HugePage, 3 /* PROT_READ | PROT_WRITE */, 0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */, -1, 0);
        if (raw == (byte*)-1) throw new OutOfMemoryException($"could not map {bytes} bytes of weights");
        var p = (byte*)(((nuint)raw + HugePage - 1) & ~(HugePage - 1));
        if (p > raw) _ = munmap(raw, (nuint)(p - raw));
        nuint tail = (nuint)(raw + size + HugePage - (p + size));
        if (tail > 0) _ = munmap(p + size, tail);
        // Advised before the first touch, so the first writes fault the range in as huge pages.
        try { _ = madvise(p, size, 14 /* MADV_HUGEPAGE */); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
        return new Slab { Base = p, Size = (long)size };
    }

    [DllImport("libc.so.6")]
    private static extern int madvise(void* addr, nuint length, int advice);

    [DllImport("libc.so.6")]
    private static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc.so.6")]
    private static extern int munmap(void* addr, nuint length);
}
