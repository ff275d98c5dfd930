namespace Loom.Kernels;

/// <summary>
/// Describes one flat batch of new tokens drawn from several sequences, the way vLLM's
/// attention metadata does. Sequence <c>s</c> owns tokens <c>[QueryStart[s], QueryStart[s+1])</c>
/// of the batch; after this step its KV holds <c>SeqLens[s]</c> tokens, so its new tokens sit at
/// positions <c>SeqLens[s] - queryLen … SeqLens[s] - 1</c>, and each attends causally to every
/// earlier position. KV blocks are found through <c>BlockTables[s * MaxBlocksPerSeq + i]</c>.
/// The arrays may be longer than needed so a runner can reuse them across steps.
/// </summary>
public sealed class AttentionMetadata
{
    public int NumSeqs { get; set; }
    public int[] QueryStart { get; set; } = [];
    public int[] SeqLens { get; set; } = [];
    public int[] BlockTables { get; set; } = [];
    public int MaxBlocksPerSeq { get; set; }

    public int NumTokens => NumSeqs == 0 ? 0 : QueryStart[NumSeqs];

    public int QueryLen(int seq) => QueryStart[seq + 1] - QueryStart[seq];

    public ReadOnlySpan<int> BlockTable(int seq) => BlockTables.AsSpan(seq * MaxBlocksPerSeq, MaxBlocksPerSeq);
}
