using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Loom.Grains.Abstractions;

namespace Loom.Silo.Engine;

/// <summary>
/// Picks the next token of one sequence from its logits, with vLLM v1's semantics and order:
/// (1) min_tokens masks the stop ids (EOS unless IgnoreEos, and StopTokenIds) to −∞ while
/// Generated &lt; MinTokens; (2) penalties: repetition over prompt ∪ output (positive logits divided,
/// negative multiplied), then frequency (−= f·count) and presence (−= p·[count &gt; 0]) over output;
/// (3) temperature 0 → argmax (ties → lowest id); otherwise (4) divide by temperature, (5) min_p
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
/// <para>Top-k and top-p never sort the vocabulary: candidates are keyed by (logit desc, id asc) in one
/// 64-bit key, top-k is a quickselect, top-p a mass-weighted quickselect that only sorts its last ≤ 16
/// keys. Logits must be finite or −∞ (NaN is not handled).</para>
/// </remarks>
public sealed class Sampler
{
    private const int BlockSize = 1024;
    private const int SmallRange = 16;

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
        int token = p.IsGreedy ? ArgMax(effective) : SampleRandom(effective, p, state.NextUniform());

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
        int vocab = logits.Length;
        float max = TensorPrimitives.Max(logits);
        if (float.IsNegativeInfinity(max)) return 0; // nothing is samplable: everything was masked
        bool topK = p.TopK > 0 && p.TopK < vocab;
        bool topP = p.TopP < 1f;

        // w = p / p_max over the whole vocabulary; everything below works on these weights.
        var all = _weights.AsSpan(0, vocab);
        Weights(logits, max, 1f / p.Temperature, all);
        if (!topK && !topP)
        {
            if (p.MinP > 0f) ZeroBelow(all, p.MinP); // min_p alone needs no candidate list
            return InverseCdf(all, u);
        }

        // Candidates are the tokens with w >= floor: min_p (w < min_p is p < min_p·p_max) and w > 0.
        float floor = Math.Max(p.MinP, float.Epsilon);
        double total = 0;
        if (topK)
        {
            floor = Math.Max(floor, KthLowerBound(all, p.TopK));
        }
        else if (topP)
        {
            total = MassAtLeast(all, floor);
            floor = NucleusLowerBound(all, floor, p.TopP * total);
        }

        int n = CollectCandidates(logits, all, floor, _keys);
        var keys = _keys.AsSpan(0, n);
        if (topK && n > p.TopK)
        {
            SelectSmallest(keys, p.TopK);
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
            n = Nucleus(keys, w, p.TopP * total);
        }
        return (int)(uint)keys[InverseCdf(w[..n], u)];
    }

    /// <summary>
    /// A weight that at least k tokens reach, so every top-k token does: the smallest of the maxima of k
    /// disjoint chunks (k distinct tokens are at least that large). Cheap, and usually close to the k-th
    /// largest weight, which leaves the quickselect a few hundred candidates instead of the vocabulary.
    /// </summary>
    private static float KthLowerBound(ReadOnlySpan<float> w, int k)
    {
        int chunk = w.Length / k;
        if (chunk < 8) return 0f;
        float bound = float.PositiveInfinity;
        for (int c = 0; c < k; c++) bound = Math.Min(bound, TensorPrimitives.Max(w.Slice(c * chunk, chunk)));
        return bound;
    }

    /// <summary>
    /// A weight threshold at or above <paramref name="floor"/> whose tokens already hold at least
    /// <paramref name="need"/> of the mass: every token below it has at least that much mass strictly
    /// more likely than itself, so it is outside the nucleus. Searched on power-of-two thresholds.
    /// </summary>
    private static float NucleusLowerBound(ReadOnlySpan<float> w, float floor, double need)
    {
        // Coarse: 2^-1, 2^-2, 2^-4, ... 2^-128; then bisect the exponent between the last miss and the hit.
        int miss = 0, hit = -1;
        for (int e = 1; e <= 128; e *= 2)
        {
            float t = MathF.ScaleB(1f, -e);
            if (t <= floor) break;
            if (MassAtLeast(w, t) >= need) { hit = e; break; }
            miss = e;
        }
        if (hit < 0) return floor;
        while (hit - miss > 1)
        {
            int mid = (hit + miss) / 2;
            if (MassAtLeast(w, MathF.ScaleB(1f, -mid)) >= need) hit = mid;
            else miss = mid;
        }
        return MathF.ScaleB(1f, -hit);
    }

    private static void ZeroBelow(Span<float> w, float t)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float start = ref MemoryMarshal.GetReference(w);
            var tv = Vector512.Create(t);
            for (; i <= w.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var v = Vector512.LoadUnsafe(ref start, (nuint)i);
                Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(v, tv), v, Vector512<float>.Zero).StoreUnsafe(ref start, (nuint)i);
            }
        }
        for (; i < w.Length; i++)
            if (!(w[i] >= t)) w[i] = 0f;
    }

    /// <summary>Sum of the weights that are >= t, in double across 16-lane partial sums.</summary>
    private static double MassAtLeast(ReadOnlySpan<float> w, float t)
    {
        double total = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float start = ref MemoryMarshal.GetReference(w);
            var tv = Vector512.Create(t);
            while (i <= w.Length - Vector512<float>.Count)
            {
                // Accumulate at most 256 vectors in float, then fold into the double total.
                var acc = Vector512<float>.Zero;
                int end = Math.Min(w.Length - Vector512<float>.Count, i + 256 * Vector512<float>.Count);
                for (; i <= end; i += Vector512<float>.Count)
                {
                    var v = Vector512.LoadUnsafe(ref start, (nuint)i);
                    acc += Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(v, tv), v, Vector512<float>.Zero);
                }
                total += Vector512.Sum(acc);
            }
        }
        for (; i < w.Length; i++)
            if (w[i] >= t) total += w[i];
        return total;
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

    /// <summary>Keys (from the logits) of every token whose weight is >= floor.</summary>
    private static int CollectCandidates(ReadOnlySpan<float> logits, ReadOnlySpan<float> w, float floor, ulong[] keys)
    {
        int n = 0, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float start = ref MemoryMarshal.GetReference(w);
            var f = Vector512.Create(floor);
            for (; i <= w.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                ulong bits = Vector512.GreaterThanOrEqual(Vector512.LoadUnsafe(ref start, (nuint)i), f).ExtractMostSignificantBits();
                while (bits != 0)
                {
                    int j = i + BitOperations.TrailingZeroCount(bits);
                    keys[n++] = Key(logits[j], j);
                    bits &= bits - 1;
                }
            }
        }
        for (; i < w.Length; i++)
            if (w[i] >= floor) keys[n++] = Key(logits[i], i);
        return n;
    }

    /// <summary>A 64-bit key whose ascending order is (logit descending, id ascending).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Key(float logit, int id)
    {
        uint b = BitConverter.SingleToUInt32Bits(logit);
        uint ascending = (b & 0x8000_0000u) != 0 ? ~b : b | 0x8000_0000u;
        return ((ulong)~ascending << 32) | (uint)id;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float KeyValue(ulong key)
    {
        uint ascending = ~(uint)(key >> 32);
        uint b = (ascending & 0x8000_0000u) != 0 ? ascending & 0x7FFF_FFFFu : ~ascending;
        return BitConverter.UInt32BitsToSingle(b);
    }

    /// <summary>Quickselect: afterwards keys[..k] are the k smallest keys, in no particular order.</summary>
    internal static void SelectSmallest(Span<ulong> keys, int k)
    {
        int lo = 0, hi = keys.Length;
        while (hi - lo > SmallRange)
        {
            int p = Partition(keys, default, lo, hi, out _);
            if (p == k || p == k - 1) return;
            if (p < k) lo = p + 1;
            else hi = p;
        }
        InsertionSort(keys, default, lo, hi);
    }

    /// <summary>
    /// Top-p: reorders (keys, w) so that the first m entries are the nucleus, and returns m: every token
    /// whose strictly-more-likely tokens hold less than <paramref name="need"/> = top_p · total mass
    /// (vLLM's rule), so at least one. The keys may be a prefix-closed subset of the distribution.
    /// </summary>
    internal static int Nucleus(Span<ulong> keys, Span<float> w, double need)
    {
        int lo = 0, hi = keys.Length;
        while (hi - lo > SmallRange)
        {
            int p = Partition(keys, w, lo, hi, out double leftMass);
            if (leftMass >= need)
            {
                hi = p;
            }
            else
            {
                need -= leftMass + w[p];
                lo = p + 1;
                if (need <= 0) return lo;
            }
        }
        InsertionSort(keys, w, lo, hi);
        int m = lo;
        while (m < hi && need > 0) need -= w[m++];
        return Math.Max(m, 1);
    }

    /// <summary>Lomuto partition of [lo, hi) around a median-of-three pivot (keys are unique); moves
    /// <paramref name="w"/> along when it is not empty and sums the weights left of the pivot.</summary>
    private static int Partition(Span<ulong> keys, Span<float> w, int lo, int hi, out double leftMass)
    {
        int mid = lo + (hi - lo) / 2, last = hi - 1;
        if (keys[mid] < keys[lo]) Swap(keys, w, lo, mid);
        if (keys[last] < keys[lo]) Swap(keys, w, lo, last);
        if (keys[mid] < keys[last]) Swap(keys, w, mid, last);
        ulong pivot = keys[last];
        int i = lo;
        leftMass = 0;
        if (w.IsEmpty)
        {
            for (int j = lo; j < last; j++)
                if (keys[j] < pivot)
                {
                    (keys[i], keys[j]) = (keys[j], keys[i]);
                    i++;
                }
        }
        else
        {
            for (int j = lo; j < last; j++)
                if (keys[j] < pivot)
                {
                    leftMass += w[j];
                    Swap(keys, w, i++, j);
                }
        }
        Swap(keys, w, i, last);
        return i;
    }

    private static void InsertionSort(Span<ulong> keys, Span<float> w, int lo, int hi)
    {
        for (int i = lo + 1; i < hi; i++)
            for (int j = i; j > lo && keys[j] < keys[j - 1]; j--)
                Swap(keys, w, j, j - 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Swap(Span<ulong> keys, Span<float> w, int a, int b)
    {
        (keys[a], keys[b]) = (keys[b], keys[a]);
        if (!w.IsEmpty) (w[a], w[b]) = (w[b], w[a]);
    }

    /// <summary>The n most likely tokens of the raw distribution, most likely first, ties by lower id.</summary>
    private static TokenLogprob[] TopLogprobs(ReadOnlySpan<float> logits, int n, float lse)
    {
        n = Math.Min(n, logits.Length);
        if (n <= 0) return [];
        Span<float> vals = stackalloc float[n];
        Span<int> ids = stackalloc int[n];
        int filled = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            float v = logits[i];
            if (filled == n && !(v > vals[n - 1])) continue; // strict: an equal value keeps the earlier id
            int pos = filled < n ? filled++ : n - 1;
            while (pos > 0 && v > vals[pos - 1])
            {
                vals[pos] = vals[pos - 1];
                ids[pos] = ids[pos - 1];
                pos--;
            }
            vals[pos] = v;
            ids[pos] = i;
        }
        var result = new TokenLogprob[filled];
        for (int i = 0; i < filled; i++) result[i] = new TokenLogprob(ids[i], vals[i] - lse);
        return result;
    }
}
