using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Loom.Silo.Engine;

/// <summary>
/// The <see cref="Sampler"/>'s candidate machinery for top-k, top-p and min-p over unnormalised weights
/// w = p / p_max, without sorting the vocabulary. Tokens are ordered by one 64-bit key, (logit descending,
/// id ascending), so ties always resolve to the lower id and every selection is deterministic.
/// </summary>
internal static class TokenSelection
{
    private const int SmallRange = 16;

    /// <summary>
    /// A weight that at least k tokens reach, so every top-k token does: the smallest of the maxima of k
    /// disjoint chunks (k distinct tokens are at least that large). Cheap, and usually close to the k-th
    /// largest weight, which leaves the quickselect a few hundred candidates instead of the vocabulary.
    /// </summary>
    internal static float KthLowerBound(ReadOnlySpan<float> w, int k)
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
    internal static float NucleusLowerBound(ReadOnlySpan<float> w, float floor, double need)
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

    internal static void ZeroBelow(Span<float> w, float t)
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
    internal static double MassAtLeast(ReadOnlySpan<float> w, float t)
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

    /// <summary>Keys (from the logits) of every token whose weight is >= floor.</summary>
    internal static int CollectCandidates(ReadOnlySpan<float> logits, ReadOnlySpan<float> w, float floor, ulong[] keys)
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
}
