using System.Runtime.InteropServices;

namespace Loom.Kernels.Cpu;

/// <summary>64-byte aligned, zero-filled native memory: cache-line and zmm aligned, off the GC heap.</summary>
internal static unsafe class NativeBuffer
{
    public const nuint Alignment = 64;

    /// <summary>Cached so every tensor shares one delegate instead of allocating a closure.</summary>
    public static readonly Action<nint> Free = p => NativeMemory.AlignedFree((void*)p);

    public static void* Alloc(long bytes)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes));
        // Round up so vector tails never read past the allocation, and never ask for 0 bytes.
        nuint size = (nuint)Math.Max(64, (bytes + 63) & ~63L);
        void* p = NativeMemory.AlignedAlloc(size, Alignment);
        if (p == null) throw new OutOfMemoryException($"could not allocate {bytes} bytes");
        NativeMemory.Clear(p, size);
        return p;
    }

    public static void Release(void* p)
    {
        if (p != null) NativeMemory.AlignedFree(p);
    }
}
