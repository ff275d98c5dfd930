using System.Numerics.Tensors;

namespace Loom.Kernels.Sampling;

/// <summary>
/// The one sampling algorithm (<see cref="SamplingBatch"/>'s specification), on host memory. The
/// CUDA kernels (sampling.cu) follow the same steps on the device; this is both the CPU backend's
/// sampler and the oracle the GPU check holds the kernels to, so a seeded request draws the same
/// token on either, up to float ties, and keeps its tokens when it fails over between them.
/// </summary>
/// <remarks>
/// <para>Cost per slot: a greedy draw with no logprobs is one vectorised argmax over the row plus
/// its sparse adjustments (applied in place and undone, never a copy of the row). A random draw adds
/// the max, one exp pass into scratch and, with top-k/top-p, a pass for a cheap lower bound; the
/// exact cut then works on the few candidates above it. Logprobs cost one more pass, only when asked.</para>
/// <para>Not thread-safe: the scratch is the instance's.</para>
/// </remarks>
public sealed class TokenSampler
{
    private const int Block = 1024;
    private float[] _w = [];
    private float[] _candVals = [];
    private int[] _candIds = [];
    private float[] _select = [];
    private double[] _blockSums = [];
    private float[] _saved = [];
    private float[] _masked = [];

    /// <summary>Samples every slot of <paramref name="batch"/> from <paramref name="logits"/> ([rows, vocab], host).
    /// The rows are modified during a slot and restored before the next.</summary>
    public void Sample(Span<float> logits, int vocab, SamplingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        batch.PrepareOutputs();
        EnsureCapacity(vocab);
        for (int s = 0; s < batch.Count; s++)
        {
            var row = logits.Slice(batch.LogitRow[s] * vocab, vocab);
            int a0 = batch.AdjustStart[s], a1 = s + 1 < batch.Count ? batch.AdjustStart[s + 1] : batch.AdjustCount;
            if (_saved.Length < a1 - a0) _saved = new float[Math.Max(a1 - a0, 2 * _saved.Length)];
            for (int a = a0; a < a1; a++)
            {
                int t = batch.AdjustToken[a];
                if ((uint)t >= (uint)vocab) { _saved[a - a0] = float.NaN; continue; }
                _saved[a - a0] = row[t];
                row[t] = Adjust(row[t], batch.AdjustDivide[a], batch.AdjustSubtract[a]);
            }

            int mask = batch.MaskOffset[s];
            if (mask >= 0) Mask(row, batch.MaskWords.AsSpan(mask, batch.MaskWordsPerSlot));
            int pick = Pick(row, batch.Temperature[s], batch.TopK[s], batch.TopP[s], batch.MinP[s], batch.Uniform[s]);
            if (mask >= 0) _masked.AsSpan(0, vocab).CopyTo(row); // the row as it was before the mask

            // Undo in reverse so a token listed twice ends at its raw value.
            for (int a = a1 - 1; a >= a0; a--)
                if (!float.IsNaN(_saved[a - a0])) row[batch.AdjustToken[a]] = _saved[a - a0];
            batch.Ids[s] = pick;
            if (batch.WantLogprob[s])
            {
                float lse = LogSumExp(row);
                batch.Logprobs[s] = row[pick] - lse;
                int n = batch.TopLogprobs;
                if (n > 0) Cpu.TopLogprobs.Fill(row, lse, batch.TopIds.AsSpan(s * n, n), batch.TopValues.AsSpan(s * n, n));
            }
            else
            {
                batch.Logprobs[s] = float.NaN;
            }
        }
    }

    /// <summary>
    /// A structured output's mask: every token outside it goes to −∞ for this slot's draw. The row
    /// (adjustments included) is saved first and put back after the draw.
    /// </summary>
    private void Mask(Span<float> row, ReadOnlySpan<uint> allowed)
    {
        if (_masked.Length < row.Length) _masked = new float[row.Length];
        row.CopyTo(_masked);
        for (int w = 0; w < allowed.Length; w++)
        {
            uint bits = allowed[w];
            if (bits == uint.MaxValue) continue;
            int end = Math.Min(row.Length, (w + 1) * 32);
            for (int t = w * 32; t < end; t++)
                if ((bits & (1u << (t & 31))) == 0) row[t] = float.NegativeInfinity;
        }
    }

    /// <summary>Step 1 for one token: l = l &gt; 0 ? l / div : l · div, then l −= sub (sub = +∞ masks it).</summary>
    public static float Adjust(float logit, float divide, float subtract) => (logit > 0 ? logit / divide : logit * divide) - subtract;

    /// <summary>
    /// The token the algorithm draws from adjusted logits <paramref name="a"/> with uniform
    /// <paramref name="u"/> in [0, 1) (see <see cref="SamplingBatch"/>).
    /// </summary>
    public int Pick(ReadOnlySpan<float> a, float temperature, int topK, float topP, float minP, float u)
    {
        float tau = Cut(a, temperature, topK, topP, minP, out int best, out int n);
        if (float.IsNaN(tau)) return best;
        if (n >= 0) return DrawCandidates(n, tau, u, best);
        var w = _w.AsSpan(0, a.Length);
        if (tau > 0f) TokenSelection.ZeroBelow(w, tau);
        return InverseCdf(w, u, best);
    }

    /// <summary>The ids a random draw can return from adjusted logits <paramref name="a"/> (the kept set), ascending.</summary>
    public int[] Support(ReadOnlySpan<float> a, float temperature, int topK, float topP, float minP)
    {
        float tau = Cut(a, temperature, topK, topP, minP, out int best, out _);
        if (float.IsNaN(tau)) return [best];
        var ids = new List<int>();
        var w = _w.AsSpan(0, a.Length);
        for (int j = 0; j < w.Length; j++)
            if (w[j] >= tau && w[j] > 0f) ids.Add(j);
        return [.. ids];
    }

    /// <summary>
    /// Steps 2-6 of the algorithm: the greedy pick (<paramref name="best"/>), the weights in scratch and
    /// the threshold τ; NaN when the draw is greedy. <paramref name="n"/> is the number of candidates
    /// collected (every kept token is among them), or -1 when the cut was taken over the whole row.
    /// </summary>
    private float Cut(ReadOnlySpan<float> a, float temperature, int topK, float topP, float minP, out int best, out int n)
    {
        best = Math.Max(TokenSelection.ArgMax(a), 0); // ties: the lowest id
        float max = a[best];
        n = -1;
        if (temperature < SamplingBatch.GreedyTemperature || float.IsNegativeInfinity(max) || float.IsNaN(max)) return float.NaN;
        EnsureCapacity(a.Length);
        var w = _w.AsSpan(0, a.Length);
        TensorPrimitives.Subtract(a, max, w);
        TensorPrimitives.Multiply(w, 1f / temperature, w);
        TensorPrimitives.Exp(w, w);

        float tau = minP > 0f ? minP : 0f;
        int vocab = a.Length;
        if (topK > 0 && topK < vocab)
        {
            float floor = Math.Max(tau, TokenSelection.KthLowerBound(w, topK));
            n = Collect(w, floor);
            if (n >= topK)
            {
                // The k-th largest weight; every token that reaches it is kept (ties at the cut too).
                // The candidates hold every token at or above it (at least k reach the bound).
                _candVals.AsSpan(0, n).CopyTo(_select);
                float kth = KthLargest(_select.AsSpan(0, n), topK);
                tau = Math.Max(tau, kth);
            }
        }
        if (topP < 1f)
        {
            if (n < 0)
            {
                double total = TokenSelection.MassAtLeast(w, tau);
                float floor = TokenSelection.NucleusLowerBound(w, Math.Max(tau, float.Epsilon), topP * total);
                n = Collect(w, Math.Max(floor, tau));
                tau = Nucleus(n, tau, topP * total);
            }
            else
            {
                double total = 0;
                for (int i = 0; i < n; i++) if (_candVals[i] >= tau) total += _candVals[i];
                tau = Nucleus(n, tau, topP * total);
            }
        }
        return tau;
    }

    /// <summary>The candidates (weight, id) with w >= floor, in id order.</summary>
    private int Collect(ReadOnlySpan<float> w, float floor)
    {
        int n = 0;
        for (int j = 0; j < w.Length; j++)
        {
            if (!(w[j] >= floor) || w[j] <= 0f) continue;
            _candVals[n] = w[j];
            _candIds[n++] = j;
        }
        return n;
    }

    /// <summary>
    /// Top-p: the largest weight v ≥ <paramref name="tau"/> such that the tokens with w ≥ v hold at
    /// least <paramref name="need"/>; the candidates must include every token with w ≥ that v.
    /// </summary>
    /// <remarks>
    /// A three-way quickselect on mass, not a sort: a flat row's nucleus is most of the vocabulary
    /// (sorting 45,000 candidates took 3-4 ms a row). Each round splits the range at a pivot into
    /// greater, equal and smaller; the answer lies in the greater part if that part's mass already
    /// reaches the need, is the pivot if the equal part completes it, and is in the smaller part
    /// otherwise, with the mass above carried along. Equal weights stay one group, as the definition says.
    /// </remarks>
    private float Nucleus(int n, float tau, double need)
    {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (_candVals[i] >= tau) _select[m++] = _candVals[i];
        var v = _select.AsSpan(0, m);
        double above = 0;
        int lo = 0, hi = m;
        while (hi - lo > 32)
        {
            int mid = lo + (hi - lo) / 2;
            float x = v[lo], y = v[mid], z = v[hi - 1];
            float pivot = Math.Max(Math.Min(x, y), Math.Min(Math.Max(x, y), z));
            int g = lo, i = lo, l = hi;
            while (i < l)
            {
                float e = v[i];
                if (e > pivot) { v[i] = v[g]; v[g++] = e; i++; }
                else if (e < pivot) { v[i] = v[--l]; v[l] = e; }
                else i++;
            }
            double greater = 0;
            for (int k = lo; k < g; k++) greater += v[k];
            if (above + greater >= need) { hi = g; continue; }
            above += greater + (double)(l - g) * pivot;
            if (above >= need) return pivot;
            lo = l;
        }

        // A few left: ascending, walked down from the largest, every tie group counted before the test.
        var rest = v[lo..hi];
        rest.Sort();
        for (int i = rest.Length - 1; i >= 0; i--)
        {
            above += rest[i];
            if (i > 0 && rest[i - 1] == rest[i]) continue;
            if (above >= need) return rest[i];
        }
        return tau;
    }

    /// <summary>The draw over the kept candidates (w ≥ tau), in id order.</summary>
    private int DrawCandidates(int n, float tau, float u, int fallback)
    {
        double total = 0;
        for (int i = 0; i < n; i++) if (_candVals[i] >= tau) total += _candVals[i];
        double target = u * total, run = 0;
        int last = fallback;
        for (int i = 0; i < n; i++)
        {
            if (_candVals[i] < tau) continue;
            run += _candVals[i];
            last = _candIds[i];
            if (run > target) return last;
        }
        return last;
    }

    /// <summary>
    /// Inverse CDF over the whole row: vectorised block sums, then a double-precision walk inside the
    /// one block the target falls in. Zero weights are never drawn while any weight is positive.
    /// </summary>
    private int InverseCdf(ReadOnlySpan<float> w, float u, int fallback)
    {
        int blocks = (w.Length + Block - 1) / Block;
        double total = 0;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * Block;
            double s = TensorPrimitives.Sum(w.Slice(start, Math.Min(Block, w.Length - start)));
            _blockSums[b] = s;
            total += s;
        }
        double target = u * total;
        int last = fallback;
        for (int b = 0; b < blocks; b++)
        {
            if (_blockSums[b] <= 0) continue;
            if (target < _blockSums[b] || b == blocks - 1)
            {
                int start = b * Block, end = Math.Min(start + Block, w.Length);
                double acc = 0;
                for (int j = start; j < end; j++)
                {
                    if (w[j] <= 0f) continue;
                    acc += w[j];
                    last = j;
                    if (target < acc) return j;
                }
            }
            target -= _blockSums[b];
        }
        return last;
    }

    /// <summary>The k-th largest of <paramref name="v"/> (1-based k), by an in-place quickselect.</summary>
    private static float KthLargest(Span<float> v, int k)
    {
        int lo = 0, hi = v.Length - 1, target = k - 1;
        while (lo < hi)
        {
            // Median of three: deterministic, and no worst case on sorted or constant runs.
            int mid = lo + (hi - lo) / 2;
            float x = v[lo], y = v[mid], z = v[hi];
            float pivot = Math.Max(Math.Min(x, y), Math.Min(Math.Max(x, y), z));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (v[i] > pivot) i++;
                while (v[j] < pivot) j--;
                if (i <= j) { (v[i], v[j]) = (v[j], v[i]); i++; j--; }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else return v[target];
        }
        return v[target];
    }

    private static float LogSumExp(ReadOnlySpan<float> x)
    {
        float max = TensorPrimitives.Max(x);
        if (float.IsNegativeInfinity(max)) return max;
        double sum = 0;
        // Blocks keep the float partial sums short.
        Span<float> e = stackalloc float[Block];
        for (int i = 0; i < x.Length; i += Block)
        {
            var chunk = x.Slice(i, Math.Min(Block, x.Length - i));
            var t = e[..chunk.Length];
            TensorPrimitives.Subtract(chunk, max, t);
            TensorPrimitives.Exp(t, t);
            sum += TensorPrimitives.Sum(t);
        }
        return max + (float)Math.Log(sum);
    }

    private void EnsureCapacity(int vocab)
    {
        if (_w.Length >= vocab) return;
        _w = new float[vocab];
        _candVals = new float[vocab];
        _candIds = new int[vocab];
        _select = new float[vocab];
        _blockSums = new double[(vocab + Block - 1) / Block];
    }
}
