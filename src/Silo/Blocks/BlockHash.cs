using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Loom.Silo.Blocks;

/// <summary>
/// Content hash of one FULL KV block: XxHash128 over (parent block hash, extra key, the block's
/// token ids). Chaining the parent makes a block's hash identify the whole prefix up to and
/// including it, so a lookup by hash is a lookup of the prefix (vLLM's hash_block_tokens).
/// </summary>
/// <remarks>
/// 128 bits is the collision guard: the prefix cache never compares token ids, so a collision
/// would serve another prompt's KV. At 2^-128 per pair that is far below hardware error rates
/// (vLLM makes the same trade with sha256 / 128-bit xxhash). The seed and the root parent are
/// fixed, not random per process, so every worker hashes a prefix the same way (the router can
/// then reason about prefix affinity across silos). Token ids are hashed as little-endian int32.
/// </remarks>
public readonly record struct BlockHash(UInt128 Value)
{
    // Fixed, arbitrary constants ("Loom" and vLLM's NONE_HASH idea): the first block of every
    // prompt chains from RootParent instead of from nothing, so "no parent" is hashed uniformly.
    private const long Seed = 0x4C6F6F6D_4B564331;
    private static readonly UInt128 RootParent = new(0x9E3779B97F4A7C15, 0xD1B54A32D192ED03);

    // Above this many bytes the scratch buffer is rented instead of stack-allocated
    // (block_size 256 would still fit; the bound only protects exotic configurations).
    private const int MaxStackBytes = 1100;

    /// <summary>Hashes one block. <paramref name="extraKey"/> is the salt (cache_salt, LoRA id, …):
    /// different salts never share KV.</summary>
    public static BlockHash Compute(BlockHash? parent, ReadOnlySpan<int> tokens, ulong extraKey)
    {
        int len = 16 + 8 + tokens.Length * sizeof(int);
        byte[]? rented = null;
        Span<byte> buf = len <= MaxStackBytes
            ? stackalloc byte[len]
            : (rented = ArrayPool<byte>.Shared.Rent(len));
        buf = buf[..len];
        try
        {
            UInt128 p = parent?.Value ?? RootParent;
            BinaryPrimitives.WriteUInt64LittleEndian(buf, (ulong)(p >> 64));
            BinaryPrimitives.WriteUInt64LittleEndian(buf[8..], (ulong)p);
            BinaryPrimitives.WriteUInt64LittleEndian(buf[16..], extraKey);
            Span<byte> tok = buf[24..];
            if (BitConverter.IsLittleEndian)
            {
                MemoryMarshal.AsBytes(tokens).CopyTo(tok);
            }
            else
            {
                for (int i = 0; i < tokens.Length; i++)
                    BinaryPrimitives.WriteInt32LittleEndian(tok[(i * 4)..], tokens[i]);
            }
            return new BlockHash(XxHash128.HashToUInt128(buf, Seed));
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public override string ToString() => Value.ToString("x32");
}
