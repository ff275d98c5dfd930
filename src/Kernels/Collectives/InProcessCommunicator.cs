namespace Loom.Kernels.Collectives;

/// <summary>
/// All-reduce between ranks that share one process and host memory (CPU shards, and the sharding
/// tests on every machine). Each rank publishes its buffer, then every rank adds all of them in
/// rank order into a private buffer and copies it back, so all ranks hold bit-identical sums and a
/// run is reproducible. Three barrier phases per call; a rank that never arrives makes the others
/// fail after <see cref="Timeout"/> instead of hanging, and <see cref="Abort"/> makes them fail at once.
/// </summary>
public sealed unsafe class InProcessCommunicator : ICommunicator
{
    private readonly Group _group;
    private float[] _sum = [];

    private InProcessCommunicator(Group group, int rank)
    {
        _group = group;
        Rank = rank;
    }

    public static TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

    public int Rank { get; }
    public int WorldSize => _group.Size;

    /// <summary>A group of <paramref name="worldSize"/> communicators, one per rank, each to be driven by its own thread.</summary>
    public static InProcessCommunicator[] CreateGroup(int worldSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(worldSize);
        var g = new Group(worldSize);
        return [.. Enumerable.Range(0, worldSize).Select(r => new InProcessCommunicator(g, r))];
    }

    public void AllReduceSum(Tensor tensor)
    {
        if (tensor.DType != DType.F32) throw new ArgumentException($"all-reduce needs an F32 tensor, got {tensor}", nameof(tensor));
        if (WorldSize == 1) return;
        var g = _group;
        if (g.Aborted.IsCancellationRequested) throw new CommunicatorAbortedException($"rank {Rank}: the tensor-parallel group was aborted");
        g.Buffers[Rank] = tensor.Data;
        g.Lengths[Rank] = tensor.ElementCount;
        Arrive();
        long n = tensor.ElementCount;
        for (int r = 0; r < WorldSize; r++)
            if (g.Lengths[r] != n)
            {
                // Every rank sees the same lengths, so every rank throws here: nobody waits forever.
                Arrive();
                throw new ArgumentException($"all-reduce size mismatch: rank {r} sent {g.Lengths[r]} elements, rank {Rank} {n}");
            }

        // One buffer per rank, grown as needed: no garbage per layer per step.
        if (_sum.Length < n) _sum = new float[n];
        fixed (float* s = _sum)
        {
            new Span<float>(s, checked((int)n)).Clear();
            for (int r = 0; r < WorldSize; r++)
            {
                float* src = (float*)g.Buffers[r];
                for (long i = 0; i < n; i++) s[i] += src[i];
            }
            Arrive(); // everyone has read every buffer
            new ReadOnlySpan<float>(s, checked((int)n)).CopyTo(tensor.AsFloatSpan());
        }
        Arrive(); // nobody republishes before everyone wrote back
    }

    private void Arrive()
    {
        bool arrived;
        try { arrived = _group.Barrier.SignalAndWait(Timeout, _group.Aborted.Token); }
        catch (OperationCanceledException) { throw new CommunicatorAbortedException($"rank {Rank}: the tensor-parallel group was aborted"); }
        if (!arrived) throw new TimeoutException($"rank {Rank}: all-reduce partners did not arrive within {Timeout}");
    }

    public void Abort() => _group.Aborted.Cancel();

    public void Dispose()
    {
    }

    private sealed class Group(int size)
    {
        public readonly int Size = size;
        public readonly Barrier Barrier = new(size);
        public readonly nint[] Buffers = new nint[size];
        public readonly long[] Lengths = new long[size];
        public readonly CancellationTokenSource Aborted = new();
    }
}

/// <summary>A collective failed because a partner rank gave up on the group.</summary>
public sealed class CommunicatorAbortedException(string message) : Exception(message);
