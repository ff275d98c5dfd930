using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>A chunk of new tokens for one sequence slot, starting at <c>StartPos</c> (the tokens already in its KV).</summary>
public readonly record struct SequenceChunk(int Slot, int[] Tokens, int StartPos);

/// <summary>
/// Drives <see cref="LlamaModel"/> without a scheduler: each of <c>maxSeqs</c> slots owns a fixed
/// run of KV blocks. The block ids are handed out in a scrambled order on purpose, so every caller
/// exercises the paged path (block tables that are not contiguous). Used by the oracle tests, the
/// kernel benchmark and one-shot generation; the engine's KvCacheManager replaces it for serving.
/// </summary>
public sealed class DirectRunner : IDisposable
{
    private readonly LlamaModel _model;
    private readonly KvCache _cache;
    private readonly ForwardBatch _batch = new();
    private readonly int _blockSize;
    private readonly int _blocksPerSeq;
    private readonly int _maxSeqLen;

    public DirectRunner(LlamaModel model, int maxSeqs, int maxSeqLen, int blockSize = 16, DType kvDType = DType.F32)
    {
        _model = model;
        _blockSize = blockSize;
        _maxSeqLen = maxSeqLen;
        _blocksPerSeq = (maxSeqLen + blockSize - 1) / blockSize;
        MaxSeqs = maxSeqs;
        _cache = model.AllocateKvCache(maxSeqs * _blocksPerSeq, blockSize, kvDType);
    }

    public int MaxSeqs { get; }

    private int BlockId(int slot, int j)
    {
        // A fixed permutation of [0, total): 7919 is prime and coprime to any pool size we use unless it divides it.
        int total = MaxSeqs * _blocksPerSeq;
        int linear = slot * _blocksPerSeq + j;
        return total % 7919 == 0 ? linear : (int)((long)linear * 7919 % total);
    }

    /// <summary>
    /// Runs one forward over the chunks and copies logits to the host: one row per chunk (its last
    /// token), or one per token when <paramref name="allLogits"/> is set.
    /// </summary>
    public float[] Step(IReadOnlyList<SequenceChunk> chunks, bool allLogits = false)
    {
        int tokens = 0;
        foreach (var ch in chunks)
        {
            if ((uint)ch.Slot >= (uint)MaxSeqs) throw new ArgumentOutOfRangeException(nameof(chunks), $"slot {ch.Slot} >= {MaxSeqs}");
            if (ch.Tokens.Length == 0) throw new ArgumentException("empty chunk", nameof(chunks));
            if (ch.StartPos + ch.Tokens.Length > _maxSeqLen)
                throw new ArgumentException($"sequence grows to {ch.StartPos + ch.Tokens.Length} tokens, limit {_maxSeqLen}", nameof(chunks));
            tokens += ch.Tokens.Length;
        }
        var b = _batch;
        b.EnsureCapacity(tokens, chunks.Count, _blocksPerSeq);
        var meta = b.Attention;
        meta.NumSeqs = chunks.Count;
        int t = 0, rows = 0;
        for (int s = 0; s < chunks.Count; s++)
        {
            var ch = chunks[s];
            meta.QueryStart[s] = t;
            meta.SeqLens[s] = ch.StartPos + ch.Tokens.Length;
            for (int j = 0; j < _blocksPerSeq; j++) meta.BlockTables[s * _blocksPerSeq + j] = BlockId(ch.Slot, j);
            for (int i = 0; i < ch.Tokens.Length; i++, t++)
            {
                int pos = ch.StartPos + i;
                b.TokenIds[t] = ch.Tokens[i];
                b.Positions[t] = pos;
                b.SlotMapping[t] = BlockId(ch.Slot, pos / _blockSize) * _blockSize + pos % _blockSize;
                if (allLogits || i == ch.Tokens.Length - 1) b.LogitRows[rows++] = t;
            }
        }
        meta.QueryStart[chunks.Count] = t;
        b.NumTokens = t;
        b.NumLogitRows = rows;
        var logits = _model.Forward(b, _cache);
        var host = new float[(long)rows * _model.Config.VocabSize];
        _model.Backend.CopyToHost(logits, host);
        return host;
    }

    public void Dispose() => _cache.Dispose();
}
