namespace Loom.Kernels.Cpu;

/// <summary>
/// A grow-only native scratch area reused across calls, so per-op temporaries (packed activations,
/// attention scores) neither hit the GC heap nor pay fresh page faults every op. A concurrent
/// second renter gets a private allocation instead of blocking.
/// </summary>
internal sealed unsafe class ScratchBuffer : IDisposable
{
    private byte* _data;
    private long _size;
    private int _inUse;

    public Lease Rent(long bytes)
    {
        if (Interlocked.CompareExchange(ref _inUse, 1, 0) != 0) return new Lease(this, (byte*)NativeBuffer.Alloc(bytes), owned: true);
        if (_size < bytes)
        {
            NativeBuffer.Release(_data);
            _data = null;
            _size = 0;
            _data = (byte*)NativeBuffer.Alloc(bytes);
            _size = bytes;
        }

        return new Lease(this, _data, owned: false);
    }

    public void Dispose()
    {
        NativeBuffer.Release(_data);
        _data = null;
        _size = 0;
    }

    public readonly struct Lease : IDisposable
    {
        private readonly ScratchBuffer _owner;
        private readonly bool _owned;

        public Lease(ScratchBuffer owner, byte* data, bool owned)
        {
            _owner = owner;
            Data = data;
            _owned = owned;
        }

        public byte* Data { get; }

        public void Dispose()
        {
            if (_owned) NativeBuffer.Release(Data);
            else Volatile.Write(ref _owner._inUse, 0);
        }
    }
}
