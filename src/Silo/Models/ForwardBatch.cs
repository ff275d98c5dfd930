using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// One flat batch for <see cref="LlamaModel.Forward"/>: the new tokens of several sequences laid
/// end to end, with their positions, the KV slot each token's K/V is written to, and the
/// attention metadata that says where every sequence's context lives in the paged pool.
/// Arrays may be longer than the counts so a runner can reuse them step after step.
/// </summary>
public sealed class ForwardBatch
{
    public int NumTokens { get; set; }
    public int[] TokenIds { get; set; } = [];
    public int[] Positions { get; set; } = [];
    public int[] SlotMapping { get; set; } = [];
    public AttentionMetadata Attention { get; set; } = new();

    /// <summary>Rows of the batch whose logits are wanted (usually each sequence's last token).</summary>
    public int[] LogitRows { get; set; } = [];
    public int NumLogitRows { get; set; }

    public void EnsureCapacity(int tokens, int seqs, int maxBlocksPerSeq)
    {
        if (TokenIds.Length < tokens)
        {
            int n = Math.Max(tokens, TokenIds.Length * 2);
            TokenIds = new int[n];
            Positions = new int[n];
            SlotMapping = new int[n];
            LogitRows = new int[n];
        }
        var a = Attention;
        if (a.SeqLens.Length < seqs)
        {
            int n = Math.Max(seqs, a.SeqLens.Length * 2);
            a.SeqLens = new int[n];
            a.QueryStart = new int[n + 1];
        }
        if (a.BlockTables.Length < seqs * maxBlocksPerSeq || a.MaxBlocksPerSeq != maxBlocksPerSeq)
            a.BlockTables = new int[Math.Max(seqs, a.SeqLens.Length) * maxBlocksPerSeq];
        a.MaxBlocksPerSeq = maxBlocksPerSeq;
    }
}
