using Loom.Grains.Abstractions;
using Loom.Kernels;

using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Simulation;

/// <summary>
/// <see cref="SamplingBatch"/>'s algorithm on a row given sparsely: one default logit for most of the
/// vocabulary and a few exceptions. The simulated runner's rows are like that (one likely token),
/// so it samples in time proportional to the exceptions and the adjustments, never the vocabulary:
/// the cluster and chaos benchmarks then measure the control path, not a memset of logits.
/// Tested against the dense <see cref="Loom.Kernels.Sampling.TokenSampler"/> on materialised rows.
/// </summary>
internal sealed class SparseRowSampler
{
    private readonly SortedDictionary<int, float> _raw = [];
    private readonly SortedDictionary<int, float> _adj = [];
    private readonly List<(float W, int Count)> _weights = [];

    /// <summary>
    /// Samples slot <paramref name="slot"/> of <paramref name="batch"/> from a row of <paramref name="vocab"/>
    /// logits that are <paramref name="defaultLogit"/> except at <paramref name="exceptions"/>.
    /// </summary>
    public void Sample(SamplingBatch batch, int slot, int vocab, float defaultLogit, IEnumerable<(int Id, float Logit)> exceptions)
    {
        _raw.Clear();
        foreach (var (id, l) in exceptions) _raw[id] = l;
        _adj.Clear();
        foreach (var (id, l) in _raw) _adj[id] = l;
        int a1 = slot + 1 < batch.Count ? batch.AdjustStart[slot + 1] : batch.AdjustCount;
        for (int a = batch.AdjustStart[slot]; a < a1; a++)
        {
            int t = batch.AdjustToken[a];
            if ((uint)t >= (uint)vocab) continue;
            float l = _adj.TryGetValue(t, out var v) ? v : defaultLogit, div = batch.AdjustDivide[a];
            l = l > 0 ? l / div : l * div;
            _adj[t] = l - batch.AdjustSubtract[a];
        }
        if (batch.MaskOffset[slot] is int mask and >= 0)
        {
            // A structured output's mask: every token outside it is an exception at -inf (linear in
            // the vocabulary, only for constrained requests).
            var words = batch.MaskWords.AsSpan(mask, batch.MaskWordsPerSlot);
            for (int t = 0; t < vocab; t++)
                if ((words[t >> 5] & (1u << (t & 31))) == 0) _adj[t] = float.NegativeInfinity;
        }
        int defaults = vocab - _adj.Count;
        batch.Ids[slot] = Pick(_adj, defaults, defaultLogit, vocab, batch.Temperature[slot], batch.TopK[slot], batch.TopP[slot], batch.MinP[slot], batch.Uniform[slot]);
        if (batch.WantLogprob[slot]) Logprobs(batch, slot, vocab, defaultLogit);
        else batch.Logprobs[slot] = float.NaN;
    }

    private int Pick(SortedDictionary<int, float> e, int defaults, float d, int vocab, float temperature, int topK, float topP, float minP, float u)
    {
        // Greedy: the largest value, ties to the lowest id (a default token's id is the first gap).
        float max = defaults > 0 ? d : float.NegativeInfinity;
        int best = defaults > 0 ? FirstDefault(e, vocab) : 0;
        foreach (var (id, v) in e)
            if (v > max || v == max && id < best) (max, best) = (v, id);
        if (temperature < SamplingBatch.GreedyTemperature || float.IsNegativeInfinity(max)) return best;

        float invT = 1f / temperature, wd = MathF.Exp((d - max) * invT);
        _weights.Clear();
        // Zero weights (masked or underflowed tokens) are never kept: leave them out of the cuts.
        foreach (var (_, v) in e) if (MathF.Exp((v - max) * invT) is var w and > 0f) _weights.Add((w, 1));
        if (defaults > 0 && wd > 0f) _weights.Add((wd, defaults));
        _weights.Sort((x, y) => y.W.CompareTo(x.W));
        float tau = minP > 0f ? minP : 0f;
        if (topK > 0 && topK < vocab)
        {
            long kept = 0, seen = 0;
            foreach (var (w, c) in _weights) if (w >= tau) kept += c;
            if (kept > topK)
                foreach (var (w, c) in _weights)
                {
                    seen += c;
                    if (seen >= topK) { tau = Math.Max(tau, w); break; }
                }
        }
        if (topP < 1f)
        {
            double total = 0, mass = 0;
            foreach (var (w, c) in _weights) if (w >= tau) total += (double)w * c;
            double need = topP * total;
            for (int i = 0; i < _weights.Count; i++)
            {
                var (w, c) = _weights[i];
                if (w < tau) break;
                mass += (double)w * c;
                if (i + 1 < _weights.Count && _weights[i + 1].W == w) continue;
                if (mass >= need) { tau = w; break; }
            }
        }

        // The draw: ids ascending, runs of default tokens in between the exceptions.
        double keptMass = 0;
        foreach (var (w, c) in _weights) if (w >= tau) keptMass += (double)w * c;
        double target = u * keptMass, run = 0;
        int next = 0, last = best;
        bool defaultKept = defaults > 0 && wd >= tau && wd > 0f;
        foreach (var (id, v) in e)
        {
            if (TryRun(next, id, ref run, ref last, out int hit)) return hit;
            float w = MathF.Exp((v - max) * invT);
            if (w >= tau && w > 0f)
            {
                run += w;
                last = id;
                if (run > target) return id;
            }
            next = id + 1;
        }
        return TryRun(next, vocab, ref run, ref last, out int tail) ? tail : last;

        bool TryRun(int from, int to, ref double acc, ref int lastKept, out int hit)
        {
            hit = -1;
            if (!defaultKept || to <= from) return false;
            double mass = (double)wd * (to - from);
            if (acc + mass > target)
            {
                hit = Math.Min(to - 1, from + (int)((target - acc) / wd));
                return true;
            }
            acc += mass;
            lastKept = to - 1;
            return false;
        }
    }

    /// <summary>The chosen token's raw logprob and the raw row's top-N, most likely first (ties: lower id).</summary>
    private void Logprobs(SamplingBatch batch, int slot, int vocab, float d)
    {
        int defaults = vocab - _raw.Count;
        float max = defaults > 0 ? d : float.NegativeInfinity;
        foreach (var (_, v) in _raw) max = Math.Max(max, v);
        double sum = defaults * Math.Exp(d - max);
        foreach (var (_, v) in _raw) sum += Math.Exp(v - max);
        float lse = max + (float)Math.Log(sum);
        int pick = batch.Ids[slot];
        batch.Logprobs[slot] = (_raw.TryGetValue(pick, out var pv) ? pv : d) - lse;
        int n = batch.TopLogprobs;
        if (n == 0) return;
        // Exceptions above the default, then default ids in order, then exceptions below it.
        var top = _raw.Where(kv => kv.Value > d).OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).Select(kv => (kv.Key, kv.Value)).ToList();
        for (int id = 0; id < vocab && top.Count < n; id++)
            if (!_raw.TryGetValue(id, out var v) || v == d) top.Add((id, d));
        top.AddRange(_raw.Where(kv => kv.Value < d).OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).Select(kv => (kv.Key, kv.Value)));
        for (int i = 0; i < n; i++)
        {
            bool has = i < top.Count;
            batch.TopIds[slot * n + i] = has ? top[i].Item1 : -1;
            batch.TopValues[slot * n + i] = has ? top[i].Item2 - lse : float.NegativeInfinity;
        }
    }

    private static int FirstDefault(SortedDictionary<int, float> e, int vocab)
    {
        int id = 0;
        foreach (var key in e.Keys)
        {
            if (key != id) return id;
            id++;
        }
        return Math.Min(id, vocab - 1);
    }
}
