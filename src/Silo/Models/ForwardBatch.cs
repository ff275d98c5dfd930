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

    /// <summary>
    /// <paramref name="tokens"/> prompt tokens split over <paramref name="seqs"/> sequences, each in
    /// its own blocks (sequence s uses blocks s·B..), each sampling its last token: the largest
    /// batch a scheduler with that token budget and sequence cap can form (GPU memory profiling).
    /// </summary>
    public static ForwardBatch Profiling(int tokens, int seqs, int blockSize)
    {
        int per = tokens / seqs, longest = tokens - per * (seqs - 1);
        int blocksPerSeq = (longest + blockSize - 1) / blockSize;
        var b = new ForwardBatch();
        b.EnsureCapacity(tokens, seqs, blocksPerSeq);
        var meta = b.Attention;
        meta.NumSeqs = seqs;
        int t = 0;
        for (int s = 0; s < seqs; s++)
        {
            int len = s == seqs - 1 ? longest : per;
            meta.QueryStart[s] = t;
            meta.SeqLens[s] = len;
            for (int j = 0; j < blocksPerSeq; j++) meta.BlockTables[s * blocksPerSeq + j] = s * blocksPerSeq + j;
            for (int i = 0; i < len; i++, t++)
            {
                b.TokenIds[t] = 0;
                b.Positions[t] = i;
                b.SlotMapping[t] = (s * blocksPerSeq + i / blockSize) * blockSize + i % blockSize;
            }
            b.LogitRows[s] = t - 1;
        }
        meta.QueryStart[seqs] = t;
        b.NumTokens = t;
        b.NumLogitRows = seqs;
        return b;
    }
}
