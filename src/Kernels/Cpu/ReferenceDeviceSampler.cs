namespace Loom.Kernels.Cpu;

/// <summary>
/// The device sampling algorithm (<see cref="SamplingBatch"/>) step for step in C#, over any
/// backend's logits (copied to the host). It is the oracle the H200 check holds the CUDA kernels
/// to, and it lets CI drive the engine's device-sampling path on a CPU. Not fast: the CPU engine
/// samples with the host Sampler, which never leaves the host anyway.
/// </summary>
public sealed class ReferenceDeviceSampler(IBackend backend) : IDeviceSampler
{
    private float[] _host = [];
    private float[] _adjusted = [];
    private float[] _p = [];

    public void Sample(Tensor logits, SamplingBatch batch)
    {
        int vocab = logits.Cols;
        if (_host.Length < logits.ElementCount) _host = new float[logits.ElementCount];
        if (_adjusted.Length < vocab) { _adjusted = new float[vocab]; _p = new float[vocab]; }
        backend.CopyToHost(logits, _host.AsSpan(0, (int)logits.ElementCount));
        batch.PrepareOutputs();
        for (int s = 0; s < batch.Count; s++)
        {
            var raw = _host.AsSpan(batch.LogitRow[s] * vocab, vocab);
            var adj = _adjusted.AsSpan(0, vocab);
            raw.CopyTo(adj);
            for (int a = 0; a < batch.AdjustCount; a++)
            {
                if (batch.AdjustSlot[a] != s || (uint)batch.AdjustToken[a] >= (uint)vocab) continue;
                ref float l = ref adj[batch.AdjustToken[a]];
                float div = batch.AdjustDivide[a];
                l = l > 0 ? l / div : l * div;
                l -= batch.AdjustSubtract[a];
            }
            int pick = Pick(adj, _p.AsSpan(0, vocab), batch.Temperature[s], batch.TopK[s], batch.TopP[s], batch.MinP[s], batch.Uniform[s]);
            float lse = LogSumExp(raw);
            batch.Ids[s] = pick;
            batch.Logprobs[s] = raw[pick] - lse;
            int n = batch.TopLogprobs;
            if (n > 0) TopLogprobs.Fill(raw, lse, batch.TopIds.AsSpan(s * n, n), batch.TopValues.AsSpan(s * n, n));
        }
    }

    /// <summary>The id the device draws from adjusted logits (see <see cref="SamplingBatch"/>); <paramref name="p"/> is vocabulary-sized scratch.</summary>
    public static int Pick(ReadOnlySpan<float> adj, Span<float> p, float temperature, int topK, float topP, float minP, float u)
    {
        int vocab = adj.Length;
        int best = 0;
        for (int j = 1; j < vocab; j++)
            if (adj[j] > adj[best]) best = j;
        if (temperature < SamplingBatch.GreedyTemperature || float.IsNegativeInfinity(adj[best])) return best;
        float tau = KeepThreshold(adj, p, temperature, topK, topP, minP, adj[best]);
        double kept = 0;
        for (int j = 0; j < vocab; j++)
            if (p[j] >= tau) kept += p[j];
        double target = u * kept, run = 0;
        int last = best;
        for (int j = 0; j < vocab; j++)
        {
            if (p[j] < tau) continue;
            run += p[j];
            last = j;
            if (run > target) return j;
        }
        return last;
    }

    /// <summary>
    /// Fills <paramref name="p"/> with softmax(adj / T) and returns τ: the kept set is {p ≥ τ}. min_p
    /// first, then top-k among what is left, then top-p of that set renormalised (vLLM's order),
    /// each cut a bisection for the largest threshold that still keeps k tokens / the mass.
    /// </summary>
    public static float KeepThreshold(ReadOnlySpan<float> adj, Span<float> p, float temperature, int topK, float topP, float minP, float max)
    {
        int vocab = adj.Length;
        float invT = 1f / temperature;
        double z = 0;
        for (int j = 0; j < vocab; j++) z += MathF.Exp((adj[j] - max) * invT);
        for (int j = 0; j < vocab; j++) p[j] = (float)(MathF.Exp((adj[j] - max) * invT) / z);
        float pMax = (float)(1 / z);
        float tau = minP > 0f ? minP * pMax : 0f;
        if (topK > 0 && topK < vocab)
        {
            float lo = tau, hi = pMax;
            for (int it = 0; it < 40; it++)
            {
                float mid = 0.5f * (lo + hi);
                int count = 0;
                for (int j = 0; j < vocab; j++)
                    if (p[j] >= mid) count++;
                if (count >= topK) lo = mid; else hi = mid;
            }
            tau = lo;
        }
        if (topP < 1f)
        {
            double need = topP * MassAtLeast(p, tau);
            float lo = tau, hi = pMax;
            for (int it = 0; it < 40; it++)
            {
                float mid = 0.5f * (lo + hi);
                if (MassAtLeast(p, mid) >= need) lo = mid; else hi = mid;
            }
            tau = lo;
        }
        return tau;
    }

    private static double MassAtLeast(ReadOnlySpan<float> p, float t)
    {
        double mass = 0;
        foreach (float v in p)
            if (v >= t) mass += v;
        return mass;
    }

    private static float LogSumExp(ReadOnlySpan<float> x)
    {
        float max = float.NegativeInfinity;
        foreach (float v in x) max = Math.Max(max, v);
        if (float.IsNegativeInfinity(max)) return max;
        double sum = 0;
        foreach (float v in x) sum += MathF.Exp(v - max);
        return max + (float)Math.Log(sum);
    }
}
