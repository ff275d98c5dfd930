namespace Loom.Silo.Engine;

/// <summary>
/// One block's KV (all layers) that the model runner must copy from <see cref="SrcBlockId"/> to
/// <see cref="DstBlockId"/> before the next step reads the destination — produced by a fork, whose
/// child cannot share the parent's partially filled last block (both will append to it).
/// </summary>
public readonly record struct BlockCopy(int SrcBlockId, int DstBlockId);
