using Loom.Grains.Abstractions;
using Loom.Kernels;

using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>
/// Translates a sequence's <see cref="SamplingState"/> into a <see cref="SamplingBatch"/> slot, and
/// the batch's outputs back into a <see cref="SampleResult"/>. The penalties and the min_tokens mask
/// become sparse per-token adjustments: a few hundred numbers per sequence, never a vocabulary row.
/// </summary>
internal sealed class SamplingSlots
{
    private readonly Dictionary<int, (float Divide, float Subtract)> _adjust = [];

    /// <summary>Adds <paramref name="state"/>'s next draw, reading logits row <paramref name="row"/> of a <paramref name="vocab"/>-token vocabulary; returns the slot.</summary>
    public int Add(SamplingBatch batch, int row, SamplingState state, int vocab)
    {
        var p = state.Params;
        bool greedy = p.Temperature < SamplingBatch.GreedyTemperature;
        int slot = batch.AddSlot(row, greedy ? 0f : p.Temperature, p.TopK, p.TopP, p.MinP, greedy ? 0 : state.NextUniform(), p.Logprobs);

        // vLLM's order: mask stop ids, repetition over prompt ∪ output, then frequency and presence
        // over the output, then logit_bias. One entry per token: l' = rep(l) − sub, a mask being sub = +∞.
        _adjust.Clear();
        if (state.StopsMasked)
            foreach (int id in state.StopTokenIds) _adjust[id] = (1f, float.PositiveInfinity);
        if (p.RepetitionPenalty != 1f && state.PromptAndOutputSet is { } seen)
            foreach (int id in seen) _adjust[id] = (p.RepetitionPenalty, _adjust.TryGetValue(id, out var had) ? had.Subtract : 0f);
        if (p.FrequencyPenalty != 0f || p.PresencePenalty != 0f)
            foreach (var (id, count) in state.OutputCounts)
            {
                var (div, sub) = _adjust.GetValueOrDefault(id, (1f, 0f));
                _adjust[id] = (div, sub + p.FrequencyPenalty * count + p.PresencePenalty);
            }
        // logit_bias last, on top of the penalties (a min_tokens mask, sub = +∞, stays masked).
        foreach (var b in p.LogitBias)
        {
            var (div, sub) = _adjust.GetValueOrDefault(b.Token, (1f, 0f));
            _adjust[b.Token] = (div, sub - b.Bias);
        }
        foreach (var (id, (div, sub)) in _adjust) batch.AddAdjustment(slot, id, div, sub);
        state.Constraint?.FillAllowed(batch.AddMask(slot, vocab));
        return slot;
    }

    /// <summary>The sampled token of <paramref name="slot"/>, with the logprobs its request asked for.</summary>
    public static SampleResult Result(SamplingBatch batch, int slot, SamplingParams p)
    {
        TokenLogprob[]? top = null;
        if (p.Logprobs is int n && n > 0)
        {
            int stride = batch.TopLogprobs, have = 0;
            n = Math.Min(n, stride);
            while (have < n && batch.TopIds[slot * stride + have] >= 0) have++;
            top = new TokenLogprob[have];
            for (int i = 0; i < have; i++) top[i] = new TokenLogprob(batch.TopIds[slot * stride + i], batch.TopValues[slot * stride + i]);
        }
        else if (p.Logprobs is not null)
        {
            top = [];
        }
        return new SampleResult(batch.Ids[slot], p.Logprobs is null ? null : batch.Logprobs[slot], top);
    }
}
