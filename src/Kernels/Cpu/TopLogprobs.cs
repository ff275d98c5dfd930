namespace Loom.Kernels.Cpu;

/// <summary>The top-N logprobs both samplers report: the host Sampler's and the device algorithm's twin.</summary>
public static class TopLogprobs
{
    /// <summary>
    /// The ids.Length largest of <paramref name="logits"/>, most likely first, ties by lower id, as
    /// (id, logit − <paramref name="lse"/>). Slots beyond the vocabulary get id −1 and −∞.
    /// </summary>
    public static void Fill(ReadOnlySpan<float> logits, float lse, Span<int> ids, Span<float> values)
    {
        int n = ids.Length, filled = 0;
        for (int j = 0; j < logits.Length; j++)
        {
            float v = logits[j];
            if (filled == n && !(v > values[n - 1])) continue; // strict: an equal value keeps the earlier id
            int pos = filled < n ? filled++ : n - 1;
            while (pos > 0 && v > values[pos - 1])
            {
                values[pos] = values[pos - 1];
                ids[pos] = ids[pos - 1];
                pos--;
            }
            values[pos] = v;
            ids[pos] = j;
        }
        for (int i = 0; i < filled; i++) values[i] -= lse;
        for (int i = filled; i < n; i++) { ids[i] = -1; values[i] = float.NegativeInfinity; }
    }
}
