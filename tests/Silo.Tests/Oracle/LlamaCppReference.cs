using LLama;
using LLama.Common;
using LLama.Native;

namespace Loom.Silo.Tests.Oracle;

/// <summary>
/// llama.cpp (through LLamaSharp) set up as an exact oracle: F32 KV, no flash attention. Returns
/// the logits of every position of a token sequence, one sequence at a time.
/// </summary>
internal sealed class LlamaCppReference : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;

    public LlamaCppReference(string ggufPath, int contextSize = 512)
    {
        var p = new ModelParams(ggufPath)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            GpuLayerCount = 0,
            FlashAttention = false,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            Threads = Environment.ProcessorCount,
            BatchThreads = Environment.ProcessorCount,
        };
        _weights = LLamaWeights.LoadFromFile(p);
        _context = _weights.CreateContext(p);
        VocabSize = _weights.Vocab.Count;
    }

    public int VocabSize { get; }

    /// <summary>Logits [tokens.Length, vocab] for positions 0..n-1 of a fresh sequence.</summary>
    public float[] AllLogits(int[] tokens)
    {
        _context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Length; i++) batch.Add((LLamaToken)tokens[i], i, (LLamaSeqId)0, logits: true);
        var rc = _context.NativeHandle.Decode(batch);
        if (rc != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {rc}");
        var result = new float[tokens.Length * VocabSize];
        for (int i = 0; i < tokens.Length; i++)
            _context.NativeHandle.GetLogitsIth(i).CopyTo(result.AsSpan(i * VocabSize, VocabSize));
        return result;
    }

    /// <summary>
    /// The same logits, decoded the way an engine feeds them: the first <paramref name="firstChunk"/>
    /// tokens in one batch, then one token a step. Differs from <see cref="AllLogits"/> only by
    /// rounding (other matrix shapes take other kernels), which measures llama.cpp's own noise floor.
    /// </summary>
    public float[] AllLogitsChunked(int[] tokens, int firstChunk)
    {
        _context.NativeHandle.MemoryClear();
        var result = new float[tokens.Length * VocabSize];
        for (int start = 0; start < tokens.Length;)
        {
            int n = start == 0 ? Math.Max(1, firstChunk) : 1;
            var batch = new LLamaBatch();
            for (int i = 0; i < n; i++) batch.Add((LLamaToken)tokens[start + i], start + i, (LLamaSeqId)0, logits: true);
            var rc = _context.NativeHandle.Decode(batch);
            if (rc != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {rc}");
            for (int i = 0; i < n; i++)
                _context.NativeHandle.GetLogitsIth(i).CopyTo(result.AsSpan((start + i) * VocabSize, VocabSize));
            start += n;
        }

        return result;
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
