namespace Loom.Silo.Blocks;

/// <summary>
/// One sequence's allocation inside a KV cache manager: its blocks in token order (and their ids,
/// kept side by side so <see cref="IKvCacheManager.BlockTable"/> is a span, not a copy), the chained
/// hashes of its leading full blocks, and how many tokens it holds slots for. Instances are recycled
/// by the managers so admitting a sequence does not allocate in steady state.
/// </summary>
public sealed class SequenceBlocks
{
    public readonly List<KvBlock> Blocks = new();
    public readonly List<int> BlockIds = new();

    /// <summary>Hashes of blocks [0, Hashes.Count): the blocks <c>CacheBlocks</c> has processed
    /// (registered, or left uncached as duplicates). The chain continues from the last one.</summary>
    public readonly List<BlockHash> Hashes = new();

    public int NumTokens;

    public void Add(KvBlock block)
    {
        Blocks.Add(block);
        BlockIds.Add(block.BlockId);
    }

    public void Clear()
    {
        Blocks.Clear();
        BlockIds.Clear();
        Hashes.Clear();
        NumTokens = 0;
    }
}
