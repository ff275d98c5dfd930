namespace Loom.Silo.Blocks;

/// <summary>
/// Free blocks in eviction order: the head is the next block handed out (and, if it is cached,
/// the next one evicted), the tail is the most recently freed. An intrusive doubly-linked list
/// through <see cref="KvBlock"/>'s links with two sentinels, so append, pop-front and removal of a
/// block from the middle (a prefix-cache hit on a free block) are all O(1) and allocation-free.
/// </summary>
internal sealed class FreeBlockQueue
{
    private readonly KvBlock _head = new(-1);
    private readonly KvBlock _tail = new(-2);

    /// <summary>Starts holding <paramref name="blocks"/> in order (block 0 handed out first).</summary>
    public FreeBlockQueue(KvBlock[] blocks)
    {
        _head.NextFree = _tail;
        _tail.PrevFree = _head;
        foreach (var b in blocks) Append(b);
    }

    public int Count { get; private set; }

    /// <summary>The block <see cref="PopFront"/> would return, or null when empty.</summary>
    public KvBlock? First => Count == 0 ? null : _head.NextFree;

    public KvBlock PopFront()
    {
        if (Count == 0) throw new InvalidOperationException("No free KV blocks.");
        var b = _head.NextFree!;
        Remove(b);
        return b;
    }

    public void Remove(KvBlock b)
    {
        if (!b.InFreeQueue) throw new InvalidOperationException($"{b} is not in the free queue.");
        b.PrevFree!.NextFree = b.NextFree;
        b.NextFree!.PrevFree = b.PrevFree;
        b.PrevFree = null;
        b.NextFree = null;
        Count--;
    }

    public void Append(KvBlock b)
    {
        if (b.InFreeQueue) throw new InvalidOperationException($"{b} is already in the free queue.");
        var last = _tail.PrevFree!;
        last.NextFree = b;
        b.PrevFree = last;
        b.NextFree = _tail;
        _tail.PrevFree = b;
        Count++;
    }

    /// <summary>Walks head to tail. Allocates an enumerator: for checks and tests, not the hot path.</summary>
    public IEnumerable<KvBlock> InOrder()
    {
        for (var b = _head.NextFree!; !ReferenceEquals(b, _tail); b = b.NextFree!)
            yield return b;
    }

    /// <summary>Checks link symmetry and that the walk length equals <see cref="Count"/>, bounded by
    /// <paramref name="maxBlocks"/> so a corrupted (cyclic) list fails instead of hanging.</summary>
    public void CheckLinks(int maxBlocks)
    {
        int n = 0;
        for (var b = _head; !ReferenceEquals(b, _tail); b = b.NextFree!)
        {
            var next = b.NextFree ?? throw new InvalidOperationException("Free queue broken: null link.");
            if (!ReferenceEquals(next.PrevFree, b))
                throw new InvalidOperationException($"Free queue broken: {next}.Prev is not {b}.");
            if (!ReferenceEquals(next, _tail) && ++n > maxBlocks)
                throw new InvalidOperationException("Free queue has a cycle.");
        }
        if (n != Count) throw new InvalidOperationException($"Free queue walk found {n} blocks, Count says {Count}.");
    }
}
