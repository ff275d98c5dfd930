using System.Numerics.Tensors;
using Loom.Grains.Abstractions;

namespace Loom.Silo.Engine;

/// <summary>
/// Picks the next token of one sequence from its logits, with vLLM v1's semantics and order:
/// (1) min_tokens masks the stop ids (EOS unless IgnoreEos, and StopTokenIds) to −∞ while
/// Generated &lt; MinTokens; (2) penalties: repetition over prompt ∪ output (positive logits divided,
/// negative multiplied), then frequency (−= f·count) and presence (−= p·[count &gt; 0]) over output;
/// (3) temperature 0 (below <see cref="GreedyTemperature"/>) → argmax (ties → lowest id); otherwise (4) divide by temperature, (5) min_p
/// (drop p &lt; min_p·p_max; vLLM applies it before top-k/top-p, and it commutes with top-k),
/// (6) top-k, (7) top-p over what is left (the smallest most-likely set whose mass reaches top_p,
/// never empty), (8) draw from the renormalised distribution by inverse CDF with the sequence's
/// counter-based uniform <see cref="SamplingState.NextUniform"/>.
/// </summary>
/// <remarks>
/// <para>Sample does not append the token to the state: call <see cref="SamplingState.Append"/> once the
/// token is accepted, then <see cref="CheckFinish"/>. Sampling twice without appending gives the same token.</para>
/// <para>Not thread-safe: the scratch buffers are owned by the instance and reused on every call, so
/// one Sampler serves one engine thread. After the buffers have grown to the vocabulary size, a call
/// without logprobs allocates nothing; with logprobs it allocates the returned top-N array.</para>
/// <para>Top-k and top-p never sort the vocabulary (see <see cref="TokenSelection"/>): a cheap exact lower
/// bound first cuts the candidates, which are keyed by (logit desc, id asc); top-k is then a quickselect
/// and top-p a mass-weighted quickselect. Logits must be finite or −∞ (NaN is not handled).</para>
/// </remarks>
public sealed class Sampler
{
    private const int BlockSize = 1024;

    /// <summary>Temperatures below this are greedy, as in vLLM (its _SAMPLING_EPS); 1/T would overflow.</summary>
    public const float GreedyTemperature = 1e-5f;

    private float[] _work = [];
    private float[] _weights = [];
    private float[] _candidateWeights = [];
    private ulong[] _keys = [];
    private double[] _blockSums = [];

    /// <param name="vocabSize">Grow the scratch buffers for this vocabulary now rather than on first use.</param>
    public Sampler(int vocabSize = 0)
    {
        if (vocabSize > 0) EnsureCapacity(vocabSize);
    }

    /// <summary>Samples the next token of <paramref name="state"/>'s sequence from <paramref name="logits"/>
    /// (one row, vocabulary-sized; not modified).</summary>
    public SampleResult Sample(ReadOnlySpan<float> logits, SamplingState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (logits.IsEmpty) throw new ArgumentException("logits must not be empty", nameof(logits));
        EnsureCapacity(logits.Length);
        var p = state.Params;

        var effective = ApplyMasksAndPenalties(logits, state);
        bool greedy = p.Temperature < GreedyTemperature;
        int token = greedy ? ArgMax(effective) : SampleRandom(effective, p, state.NextUniform());

        float lse = LogSumExp(logits);
        var top = p.Logprobs is int n ? TopLogprobs(logits, n, lse) : null;
        return new SampleResult(token, logits[token] - lse, top);
    }

    /// <summary>Whether the just-appended <paramref name="token"/> stops the sequence: it is EOS (unless
    /// IgnoreEos) or in StopTokenIds, and Generated (counting it) &gt;= MinTokens. Call after Append.</summary>
    public static bool IsStopToken(int token, SamplingState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.Generated >= state.Params.MinTokens && state.IsStopId(token);
    }

    /// <summary>After <c>state.Append(token)</c>: Stop for a stop token, Length once Generated reaches
    /// MaxTokens, else null. Stop wins when both hold.</summary>
    public static FinishReason? CheckFinish(SamplingState state, int token)
    {
        if (IsStopToken(token, state)) return FinishReason.Stop;
        if (state.Generated >= state.Params.MaxTokens) return FinishReason.Length;
        return null;
    }

    private void EnsureCapacity(int vocab)
    {
        if (_work.Length >= vocab) return;
        _work = new float[vocab];
        _weights = new float[vocab];
        _candidateWeights = new float[vocab];
        _keys = new ulong[vocab];
        _blockSums = new double[(vocab + BlockSize - 1) / BlockSize];
    }

    internal ReadOnlySpan<float> ApplyMasksAndPenalties(ReadOnlySpan<float> logits, SamplingState state)
    {
        EnsureCapacity(logits.Length);
        var p = state.Params;
        bool mask = state.StopsMasked && state.StopTokenIds.Length > 0;
        var seen = p.RepetitionPenalty != 1f ? state.PromptAndOutputSet : null;
        bool rep = seen is { Count: > 0 };
        bool freqPres = (p.FrequencyPenalty != 0f || p.PresencePenalty != 0f) && state.OutputCounts.Count > 0;
        if (!mask && !rep && !freqPres) return logits;

        var w = _work.AsSpan(0, logits.Length);
        logits.CopyTo(w);
        if (mask)
            foreach (int id in state.StopTokenIds)
                if ((uint)id < (uint)w.Length) w[id] = float.NegativeInfinity;
        if (rep)
        {
            float r = p.RepetitionPenalty;
            foreach (int id in seen!)
                if ((uint)id < (uint)w.Length)
                {
                    float l = w[id];
                    w[id] = l > 0 ? l / r : l * r;
                }
        }
        if (freqPres)
        {
            float f = p.FrequencyPenalty, pres = p.PresencePenalty;
            foreach (var (id, count) in state.OutputCounts)
                if ((uint)id < (uint)w.Length)
                {
                    w[id] -= f * count;
                    w[id] -= pres;
                }
        }
        return w;
    }

    /// <summary>Index of the largest logit; ties go to the lowest id.</summary>
    internal static int ArgMax(ReadOnlySpan<float> x)
    {
        return Math.Max(TensorPrimitives.IndexOfMax(x), 0);
    }

    private int SampleRandom(ReadOnlySpan<float> logits, SamplingParams p, double u)
    {
        var all = _weights.AsSpan(0, logits.Length);
        if (!Truncate(logits, p, all, out int n)) return InverseCdf(all, u);
        return (int)(uint)_keys[InverseCdf(_candidateWeights.AsSpan(0, n), u)];
    }

    /// <summary>
    /// Temperature, min_p, top-k and top-p. Fills <paramref name="all"/> with w = p / p_max. Returns false
    /// when the support is the tokens with w &gt; 0 in <paramref name="all"/> (no top-k/top-p: min_p alone
    /// just zeroes weights); true when it is _keys[..n] with weights _candidateWeights[..n].
    /// </summary>
    private bool Truncate(ReadOnlySpan<float> logits, SamplingParams p, Span<float> all, out int n)
    {
        int vocab = logits.Length;
        n = 0;
        float max = TensorPrimitives.Max(logits);
        if (float.IsNegativeInfinity(max))
        {
            all.Clear(); // nothing is samplable: everything was masked; InverseCdf falls back to token 0
            return false;
        }
        bool topK = p.TopK > 0 && p.TopK < vocab;
        bool topP = p.TopP < 1f;

        Weights(logits, max, 1f / p.Temperature, all);
        if (!topK && !topP)
        {
            if (p.MinP > 0f) TokenSelection.ZeroBelow(all, p.MinP); // min_p alone needs no candidate list
            return false;
        }

        // Candidates are the tokens with w >= floor: min_p (w < min_p is p < min_p·p_max) and w > 0,
        // raised to a bound that provably keeps every top-k / nucleus token.
        float floor = Math.Max(p.MinP, float.Epsilon);
        double total = 0;
        if (topK)
        {
            floor = Math.Max(floor, TokenSelection.KthLowerBound(all, p.TopK));
        }
        else if (topP)
        {
            total = TokenSelection.MassAtLeast(all, floor);
            floor = TokenSelection.NucleusLowerBound(all, floor, p.TopP * total);
        }

        n = TokenSelection.CollectCandidates(logits, all, floor, _keys);
        var keys = _keys.AsSpan(0, n);
        if (topK && n > p.TopK)
        {
            TokenSelection.SelectSmallest(keys, p.TopK);
            n = p.TopK;
            keys = keys[..n];
        }
        var w = _candidateWeights.AsSpan(0, n);
        for (int i = 0; i < n; i++) w[i] = all[(int)(uint)keys[i]];
        if (topP)
        {
            if (topK)
            {
                total = 0; // top-p sees the top-k set renormalised
                foreach (float x in w) total += x;
            }
            n = TokenSelection.Nucleus(keys, w, p.TopP * total);
        }
        return true;
    }

    /// <summary>The ids a non-greedy draw can return from these (already penalised) logits, ascending.</summary>
    internal int[] Support(ReadOnlySpan<float> logits, SamplingParams p)
    {
        EnsureCapacity(logits.Length);
        var all = _weights.AsSpan(0, logits.Length);
        if (Truncate(logits, p, all, out int n))
        {
            var ids = new int[n];
            for (int i = 0; i < n; i++) ids[i] = (int)(uint)_keys[i];
            Array.Sort(ids);
            return ids;
        }
        var result = new List<int>();
        for (int i = 0; i < all.Length; i++)
            if (all[i] > 0f) result.Add(i);
        return [.. result];
    }

    /// <summary>w = exp((l − max)/T), unnormalised probabilities.</summary>
    private static void Weights(ReadOnlySpan<float> logits, float max, float invT, Span<float> w)
    {
        TensorPrimitives.Subtract(logits, max, w);
        TensorPrimitives.Multiply(w, invT, w);
        TensorPrimitives.Exp(w, w);
    }

    private float LogSumExp(ReadOnlySpan<float> logits)
    {
        float max = TensorPrimitives.Max(logits);
        if (float.IsNegativeInfinity(max)) return max;
        var e = _weights.AsSpan(0, logits.Length);
        TensorPrimitives.Subtract(logits, max, e);
        TensorPrimitives.Exp(e, e);
        return max + MathF.Log(TensorPrimitives.Sum(e));
    }

    /// <summary>
    /// Inverse CDF over unnormalised weights with uniform u ∈ [0,1): block sums first (vectorised), then a
    /// double-precision scan inside the one block the target falls in. Never returns a zero-weight index
    /// while some weight is positive.
    /// </summary>
    private int InverseCdf(ReadOnlySpan<float> w, double u)
    {
        int blocks = (w.Length + BlockSize - 1) / BlockSize;
        double total = 0;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * BlockSize;
            double s = TensorPrimitives.Sum(w.Slice(start, Math.Min(BlockSize, w.Length - start)));
            _blockSums[b] = s;
            total += s;
        }
        double target = u * total;
        for (int b = 0; b < blocks; b++)
        {
            if (target < _blockSums[b])
            {
                int start = b * BlockSize, end = Math.Min(start + BlockSize, w.Length);
                double acc = 0;
                int lastPositive = -1;
                for (int j = start; j < end; j++)
                {
                    if (w[j] <= 0f) continue;
                    acc += w[j];
                    lastPositive = j;
                    if (target < acc) return j;
                }
                if (lastPositive >= 0) return lastPositive; // rounding between the block sum and the scan
            }
            target -= _blockSums[b];
        }
        for (int j = w.Length - 1; j >= 0; j--)
            if (w[j] > 0f) return j;
        return 0;
    }

    /// <summary>The n most likely tokens of the raw distribution, most likely first, ties by lower id.</summary>
    private static TokenLogprob[] TopLogprobs(ReadOnlySpan<float> logits, int n, float lse)
    {
        n = Math.Min(n, logits.Length);
        if (n <= 0) return [];
        Span<float> vals = stackalloc float[n];
        Span<int> ids = stackalloc int[n];
        Loom.Kernels.Cpu.TopLogprobs.Fill(logits, lse, ids, vals);
        var result = new TokenLogprob[n];
        for (int i = 0; i < n; i++) result[i] = new TokenLogprob(ids[i], vals[i]);
        return result;
    }
}
