using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Loom.Benchmarks;

/// <summary>
/// The same workload through llama.cpp's own continuous batching (one sequence id per request,
/// unified KV, greedy, raw LLamaBatch): each step carries one decode token per running request
/// plus prompt tokens of newly admitted ones, up to the batch size.
/// </summary>
public static class LlamaCppBatchedPeer
{
    public static RunMetrics Run(string gguf, IReadOnlyList<WorkItem> work, int concurrency, int threads, int batchTokens)
    {
        int maxSeqTokens = work.Max(w => w.Prompt.Length + w.OutputTokens);
        var p = new ModelParams(gguf)
        {
            ContextSize = (uint)(concurrency * maxSeqTokens),
            BatchSize = (uint)batchTokens,
            UBatchSize = (uint)batchTokens,
            SeqMax = (uint)concurrency,
            // One KV stream per sequence: with a unified cache every token attends over all of it.
            KVUnified = false,
            GpuLayerCount = 0,
            Threads = threads,
            BatchThreads = threads,
        };
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var h = ctx.NativeHandle;
        int vocab = weights.Vocab.Count;

        var pending = new Queue<int>(Enumerable.Range(0, work.Count));
        var slots = new (int Item, int Fed, int Generated, int Next)[concurrency];
        for (int i = 0; i < concurrency; i++) slots[i] = (-1, 0, 0, 0);
        var metrics = new RunMetrics(work.Count);
        var batch = new LLamaBatch();
        var rowOf = new int[concurrency];
        var clock = Stopwatch.StartNew();
        int done = 0, peak = 0;
        while (done < work.Count)
        {
            batch.Clear();
            for (int s = 0; s < concurrency; s++)
                if (slots[s].Item < 0 && pending.Count > 0)
                {
                    slots[s] = (pending.Dequeue(), 0, 0, 0);
                    metrics.Submitted(slots[s].Item, clock.Elapsed.TotalSeconds);
                }
            int budget = batchTokens, running = 0;
            Array.Fill(rowOf, -1);
            // Decode tokens first (one each), then prompt chunks with what is left.
            for (int s = 0; s < concurrency; s++)
            {
                var sl = slots[s];
                if (sl.Item < 0) continue;
                running++;
                var w = work[sl.Item];
                if (sl.Fed < w.Prompt.Length || budget == 0) continue;
                rowOf[s] = batch.TokenCount;
                batch.Add((LLamaToken)sl.Next, w.Prompt.Length + sl.Generated - 1, (LLamaSeqId)s, logits: true);
                budget--;
            }
            for (int s = 0; s < concurrency && budget > 0; s++)
            {
                var sl = slots[s];
                if (sl.Item < 0) continue;
                var w = work[sl.Item];
                if (sl.Fed >= w.Prompt.Length) continue;
                int take = Math.Min(budget, w.Prompt.Length - sl.Fed);
                for (int i = 0; i < take; i++)
                {
                    bool last = sl.Fed + i == w.Prompt.Length - 1;
                    if (last) rowOf[s] = batch.TokenCount;
                    batch.Add((LLamaToken)w.Prompt[sl.Fed + i], sl.Fed + i, (LLamaSeqId)s, logits: last);
                }
                slots[s].Fed += take;
                budget -= take;
            }
            peak = Math.Max(peak, running);
            var rc = h.Decode(batch);
            if (rc != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {rc}");
            double now = clock.Elapsed.TotalSeconds;
            for (int s = 0; s < concurrency; s++)
            {
                if (rowOf[s] < 0) continue;
                var logits = h.GetLogitsIth(rowOf[s]);
                int best = 0;
                for (int i = 1; i < vocab; i++) if (logits[i] > logits[best]) best = i;
                var sl = slots[s];
                metrics.Token(sl.Item, now);
                slots[s] = (sl.Item, sl.Fed, sl.Generated + 1, best);
                if (sl.Generated + 1 == work[sl.Item].OutputTokens)
                {
                    h.MemorySequenceRemove((LLamaSeqId)s, -1, -1);
                    metrics.Finished(sl.Item, now);
                    slots[s] = (-1, 0, 0, 0);
                    done++;
                }
            }
        }
        metrics.Complete(clock.Elapsed.TotalSeconds, peak);
        return metrics;
    }
}
