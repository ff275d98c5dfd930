using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>
/// vLLM v1's scheduling rules over one token budget per step: running sequences first (decode
/// tokens and the next chunk of unfinished prefills), then waiting ones while budget, seats and
/// KV blocks last. When a running sequence cannot get a block, the newest running sequence is
/// preempted (blocks freed, recomputed later from the front of the queue). After the step,
/// <see cref="UpdateFromOutput"/> advances the sequences, caches their full blocks, appends the
/// sampled tokens, checks stops and frees the finished. It sees KV only through <see cref="IKvCacheManager"/>.
/// </summary>
public sealed class Scheduler
{
    private readonly EngineOptions _options;
    private readonly IKvCacheManager _kv;
    private readonly IAdmissionPolicy _admission;
    private readonly LinkedList<Sequence> _waiting = new();
    private readonly List<Sequence> _running = [];
    private readonly SchedulerOutput _output = new();

    public Scheduler(EngineOptions options, IKvCacheManager kv, IAdmissionPolicy? admission = null)
    {
        _options = options;
        _kv = kv;
        _admission = admission ?? new ContinuousAdmission(options.MaxNumSeqs);
    }

    public int NumWaiting => _waiting.Count;
    public int NumRunning => _running.Count;
    public long Preemptions { get; private set; }
    public int PeakRunning { get; private set; }
    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;

    /// <summary>Prompt tokens computed and tokens generated since start (the metrics' counters).</summary>
    public long PromptTokens { get; private set; }

    public long GenerationTokens { get; private set; }

    public Sequence? PeekWaiting() => _waiting.First?.Value;

    public void AddWaiting(Sequence seq)
    {
        seq.Status = SequenceStatus.Waiting;
        _waiting.AddLast(seq);
    }

    public SchedulerOutput Schedule()
    {
        var output = _output;
        output.Clear();
        int budget = _options.MaxNumBatchedTokens;

        // 1. Running sequences, oldest first, so preemption always takes the newest.
        for (int i = 0; i < _running.Count && budget > 0; i++)
        {
            var seq = _running[i];
            int numNew = Math.Min(seq.Count - seq.NumComputedTokens, budget);
            if (numNew <= 0) continue;
            bool scheduled = false;
            while (true)
            {
                if (_kv.AllocateSlots(seq.Id, numNew)) { scheduled = true; break; }
                var victim = _running[^1];
                _running.RemoveAt(_running.Count - 1);
                budget += Preempt(victim, output);
                if (victim == seq) break;
            }
            if (!scheduled) break;
            output.Scheduled.Add(new ScheduledSequence(seq, numNew));
            budget -= numNew;
        }

        // 2. Waiting sequences, unless this step had to preempt (vLLM: no admission under memory
        // pressure), as long as the admission policy lets them join.
        int runningAtStart = _running.Count;
        bool admit = output.Preempted.Count == 0;
        for (var node = _waiting.First; admit && node is not null && _admission.MayAdmit(runningAtStart, _running.Count, budget);)
        {
            var seq = node.Value;
            var next = node.Next;
            if (seq.IsHeld)
            {
                node = next;
                continue;
            }
            IReadOnlyList<KvBlock>? hits = null;
            int computed = seq.NumComputedTokens;
            if (computed == 0 && !_kv.Contains(seq.Id))
                (hits, computed) = _kv.GetComputedBlocks(seq.Id, seq.Tokens, seq.Request.Request.CacheSalt);
            int numNew = Math.Min(seq.Count - computed, budget);
            if (!_kv.AllocateSlots(seq.Id, numNew, hits, hits is null ? 0 : computed)) break;
            seq.NumComputedTokens = computed;
            _waiting.Remove(node);
            node = next;
            seq.Status = SequenceStatus.Running;
            _running.Add(seq);
            if (numNew > 0) output.Scheduled.Add(new ScheduledSequence(seq, numNew));
            budget -= numNew;
        }

        PeakRunning = Math.Max(PeakRunning, _running.Count);
        output.NumTokens = _options.MaxNumBatchedTokens - budget;
        return output;
    }

    /// <summary>Returns the budget the victim had already been given this step.</summary>
    private int Preempt(Sequence victim, SchedulerOutput output)
    {
        int refund = 0;
        if (_kv.Contains(victim.Id)) _kv.Free(victim.Id);
        victim.NumComputedTokens = 0;
        victim.Preemptions++;
        victim.Status = SequenceStatus.Waiting;
        _waiting.AddFirst(victim);
        output.Preempted.Add(victim);
        for (int i = output.Scheduled.Count - 1; i >= 0; i--)
            if (output.Scheduled[i].Sequence == victim)
            {
                refund += output.Scheduled[i].NumNewTokens;
                output.Scheduled.RemoveAt(i);
            }
        Preemptions++;
        return refund;
    }

    /// <summary>
    /// After the step ran: advances every scheduled sequence, caches its full blocks for the prefix
    /// cache, appends the token sampled for each that samples (<paramref name="sampled"/>, in
    /// scheduling order), checks its stops and frees it when finished. Fills <paramref name="emitted"/>.
    /// </summary>
    public void UpdateFromOutput(SchedulerOutput step, ReadOnlySpan<SampleResult> sampled, List<Emitted> emitted)
    {
        emitted.Clear();
        int row = 0;
        foreach (var s in step.Scheduled)
        {
            var seq = s.Sequence;
            bool samples = s.Samples;
            seq.NumComputedTokens += s.NumNewTokens;
            if (seq.NumComputedTokens <= seq.PromptLength) PromptTokens += s.NumNewTokens;
            _kv.CacheBlocks(seq.Id, seq.Tokens, seq.NumComputedTokens, seq.Request.Request.CacheSalt);
            if (!samples) continue;
            var result = sampled[row++];
            seq.Append(result.Token);
            seq.Sampling.Append(result.Token);
            GenerationTokens++;
            var finish = seq.Sampling.Finish(result.Token);
            emitted.Add(new Emitted(seq, result, finish));
            if (finish is not null) Finish(seq);
        }
    }

    /// <summary>Removes a finished or aborted sequence and frees its blocks.</summary>
    public void Finish(Sequence seq)
    {
        if (seq.Status == SequenceStatus.Running) _running.Remove(seq);
        else if (seq.Status == SequenceStatus.Waiting) _waiting.Remove(seq);
        seq.Status = SequenceStatus.Finished;
        if (_kv.Contains(seq.Id)) _kv.Free(seq.Id);
    }
}

/// <summary>One token a step produced for a sequence, and whether it finished the sequence.</summary>
public readonly record struct Emitted(Sequence Sequence, SampleResult Result, Loom.Grains.Abstractions.FinishReason? Finish);

/// <summary>Whether a step may admit one more waiting sequence. The engine serves with <see cref="ContinuousAdmission"/>; the benchmark swaps in its baselines.</summary>
public interface IAdmissionPolicy
{
    bool MayAdmit(int runningAtStepStart, int running, int tokenBudgetLeft);
}

/// <summary>vLLM's continuous batching: every step, waiting sequences join while seats and token budget last.</summary>
public sealed class ContinuousAdmission(int maxNumSeqs) : IAdmissionPolicy
{
    public bool MayAdmit(int runningAtStepStart, int running, int tokenBudgetLeft) => running < maxNumSeqs && tokenBudgetLeft > 0;
}
