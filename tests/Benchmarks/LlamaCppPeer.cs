using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Loom.Benchmarks;

/// <summary>llama.cpp through LLamaSharp, driven with raw batches (BatchedExecutor is slower), as the peer.</summary>
public sealed class LlamaCppPeer : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;

    public LlamaCppPeer(string gguf, int contextSize, int threads)
    {
        var p = new ModelParams(gguf)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = 512,
            GpuLayerCount = 0,
            Threads = threads,
            BatchThreads = threads,
        };
        _weights = LLamaWeights.LoadFromFile(p);
        _context = _weights.CreateContext(p);
    }

    private void Decode(LLamaBatch batch)
    {
        var rc = _context.NativeHandle.Decode(batch);
        if (rc != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {rc}");
    }

    /// <summary>Seconds to prefill <paramref name="prompt"/> in one batch (logits for the last token only).</summary>
    public double Prefill(int[] prompt)
    {
        _context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Length; i++) batch.Add((LLamaToken)prompt[i], i, (LLamaSeqId)0, logits: i == prompt.Length - 1);
        var sw = Stopwatch.StartNew();
        Decode(batch);
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Seconds per token for greedy single-stream decode of <paramref name="steps"/> tokens after a prompt.</summary>
    public double DecodeSecondsPerToken(int[] prompt, int steps)
    {
        Prefill(prompt);
        int vocab = _weights.Vocab.Count;
        int pos = prompt.Length;
        int next = ArgMax(_context.NativeHandle.GetLogitsIth(prompt.Length - 1), vocab);
        var batch = new LLamaBatch();
        var sw = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++)
        {
            batch.Clear();
            batch.Add((LLamaToken)next, pos++, (LLamaSeqId)0, logits: true);
            Decode(batch);
            next = ArgMax(_context.NativeHandle.GetLogitsIth(0), vocab);
        }
        return sw.Elapsed.TotalSeconds / steps;
    }

    private static int ArgMax(Span<float> x, int n)
    {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
