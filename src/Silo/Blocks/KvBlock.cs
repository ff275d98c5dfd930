namespace Loom.Silo.Blocks;

/// <summary>
/// One fixed-size KV block (block_size token slots in every layer). Pure bookkeeping: the
/// memory itself lives in the backend's KV cache at index <see cref="BlockId"/>.
/// </summary>
/// <remarks>
/// A class, not a struct, because blocks are shared by reference between requests' block tables
/// and the free queue links them intrusively (<see cref="PrevFree"/>/<see cref="NextFree"/>), which
/// is what makes removing a cache hit from the middle of the queue O(1).
/// </remarks>
public sealed class KvBlock
{
    internal KvBlock(int blockId) => BlockId = blockId;

    /// <summary>Index of the block in the KV cache tensor.</summary>
    public int BlockId { get; }

    /// <summary>Number of request block tables holding this block; 0 means it is in the free queue.</summary>
    public int RefCount { get; internal set; }

    /// <summary>Set while the block is registered in the prefix cache (it is full and its content
    /// hash is known); cleared when it is evicted for reuse.</summary>
    public BlockHash? Hash { get; internal set; }

    // Free-queue links. Non-null exactly while the block is in the queue (the queue has sentinels,
    // so a queued block always has both neighbours).
    internal KvBlock? PrevFree;
    internal KvBlock? NextFree;

    internal bool InFreeQueue => PrevFree is not null;

    public override string ToString() =>
        $"KvBlock({BlockId}, ref={RefCount}{(Hash is { } h ? ", hash=" + h : "")})";
}
