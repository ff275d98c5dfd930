namespace Loom.Kernels;

/// <summary>
/// One step's sampling work for an <see cref="IDeviceSampler"/>: a slot per sampled token, each
/// reading one row of the step's logits (n &gt; 1 samples share their prompt's row), its own
/// parameters, its own uniform draw, and a sparse list of logit adjustments (penalties, min_tokens
/// masks). The caller fills it, the sampler writes the outputs. Grow-only arrays: after the first
/// steps a batch allocates nothing.
/// </summary>
/// <remarks>
/// The one sampling algorithm. <see cref="Sampling.TokenSampler"/> (host) and the CUDA kernels
/// (sampling.cu) implement these steps, so a seeded draw gives the same token on either, up to float
/// ties (their exp and sums round differently). Per slot:
/// <list type="number">
/// <item>a = the raw row with each adjustment applied: l = l &gt; 0 ? l / div : l · div, then l −= sub
/// (sub = +∞ masks the token); a slot with an allowed-token mask (structured outputs) has every
/// token outside it at −∞;</item>
/// <item>temperature below <see cref="GreedyTemperature"/>, or everything masked: the argmax of a
/// (ties: the lowest id);</item>
/// <item>otherwise w = exp((a − max a) / T), so the most likely token has w = 1 and w = p / p_max;</item>
/// <item>τ = min_p (w ≥ min_p is p ≥ min_p · p_max), or 0;</item>
/// <item>top_k (0 &lt; k &lt; vocab), when more than k tokens have w ≥ τ: τ = the k-th largest w, so every
/// token tied at the cut is kept;</item>
/// <item>top_p (&lt; 1): τ = the largest weight v ≥ τ such that the tokens with w ≥ v hold at least
/// top_p of the mass of those with w ≥ τ (vLLM's order: top-p sees the top-k set renormalised; ties
/// kept). Both cuts are exact: τ is always one of the row's weights;</item>
/// <item>the draw walks the kept tokens {w ≥ τ} in id order and returns the first whose running mass
/// exceeds u · (kept mass), u the slot's counter-based uniform in [0, 1);</item>
/// <item>only when asked (<see cref="WantLogprob"/>): the chosen token's logprob under the raw row's
/// softmax, and the raw row's N most likely tokens (ties: lower id first).</item>
/// </list>
/// </remarks>
public sealed class SamplingBatch
{
    /// <summary>Temperatures below this are greedy (vLLM's _SAMPLING_EPS).</summary>
    public const float GreedyTemperature = 1e-5f;

    public int Count { get; private set; }
    public int AdjustCount { get; private set; }

    /// <summary>The most top logprobs any slot asked for; every slot gets this many in <see cref="TopIds"/>.</summary>
    public int TopLogprobs { get; private set; }

    public int[] LogitRow { get; private set; } = new int[8];
    public float[] Temperature { get; private set; } = new float[8];
    public int[] TopK { get; private set; } = new int[8];
    public float[] TopP { get; private set; } = new float[8];
    public float[] MinP { get; private set; } = new float[8];
    public float[] Uniform { get; private set; } = new float[8];

    /// <summary>Whether the slot's request asked for logprobs: only then is the raw softmax computed.</summary>
    public bool[] WantLogprob { get; private set; } = new bool[8];

    /// <summary>Where each slot's adjustments start: a slot's are the ones added after it and before the next slot.</summary>
    public int[] AdjustStart { get; private set; } = new int[8];

    /// <summary>
    /// Where each slot's allowed-token mask starts in <see cref="MaskWords"/> (bit t of word t / 32 set =
    /// token t allowed; <see cref="MaskWordsPerSlot"/> words), or -1 for a slot without one.
    /// </summary>
    public int[] MaskOffset { get; private set; } = new int[8];

    public uint[] MaskWords { get; private set; } = [];

    public int MaskWordsPerSlot { get; private set; }

    /// <summary>Whether any slot of this batch has a mask.</summary>
    public bool HasMasks { get; private set; }

    /// <summary>Words of <see cref="MaskWords"/> in use (masks are packed in slot order).</summary>
    public int MaskWordsUsed { get; private set; }

    public int[] AdjustSlot { get; private set; } = new int[64];
    public int[] AdjustToken { get; private set; } = new int[64];
    public float[] AdjustDivide { get; private set; } = new float[64];
    public float[] AdjustSubtract { get; private set; } = new float[64];

    /// <summary>Outputs: the chosen id and its raw logprob per slot.</summary>
    public int[] Ids { get; private set; } = new int[8];
    public float[] Logprobs { get; private set; } = new float[8];

    /// <summary>Outputs: [Count, TopLogprobs] ids and raw logprobs, most likely first.</summary>
    public int[] TopIds { get; private set; } = [];
    public float[] TopValues { get; private set; } = [];

    public void Clear()
    {
        Count = 0;
        AdjustCount = 0;
        HasMasks = false;
        MaskWordsUsed = 0;
        TopLogprobs = 0;
    }

    /// <summary>
    /// Adds a slot and returns its index; its adjustments follow (<see cref="AddAdjustment"/>) before
    /// the next slot. Top-k ≤ 0 and top-p ≥ 1 disable those cuts. <paramref name="logprobs"/>: null
    /// for none, else how many top logprobs (0: only the chosen token's).
    /// </summary>
    public int AddSlot(int logitRow, float temperature, int topK, float topP, float minP, double uniform, int? logprobs)
    {
        if (Count == LogitRow.Length) GrowSlots(Count * 2);
        int s = Count++;
        LogitRow[s] = logitRow;
        Temperature[s] = temperature;
        TopK[s] = topK;
        TopP[s] = topP;
        MinP[s] = minP;
        // Below 1 in float too: a uniform that rounds up to 1.0 would walk past the kept mass.
        Uniform[s] = Math.Min((float)uniform, 0.99999994f);
        WantLogprob[s] = logprobs.HasValue;
        AdjustStart[s] = AdjustCount;
        MaskOffset[s] = -1;
        TopLogprobs = Math.Max(TopLogprobs, logprobs ?? 0);
        return s;
    }

    /// <summary>Adds one adjustment to the last slot added; a token must appear at most once per slot.</summary>
    public void AddAdjustment(int slot, int token, float divide, float subtract)
    {
        if (slot != Count - 1) throw new InvalidOperationException($"adjustments belong to the last slot added ({Count - 1}), not {slot}");
        if (AdjustCount == AdjustSlot.Length)
        {
            int n = AdjustCount * 2;
            AdjustSlot = Grow(AdjustSlot, n);
            AdjustToken = Grow(AdjustToken, n);
            AdjustDivide = Grow(AdjustDivide, n);
            AdjustSubtract = Grow(AdjustSubtract, n);
        }
        int a = AdjustCount++;
        AdjustSlot[a] = slot;
        AdjustToken[a] = token;
        AdjustDivide[a] = divide;
        AdjustSubtract[a] = subtract;
    }

    /// <summary>
    /// Gives the last slot added an allowed-token mask over <paramref name="vocab"/> tokens and returns
    /// its words, all clear: set bit t to allow token t (structured outputs fill it from their automaton).
    /// </summary>
    public Span<uint> AddMask(int slot, int vocab)
    {
        if (slot != Count - 1) throw new InvalidOperationException($"a mask belongs to the last slot added ({Count - 1}), not {slot}");
        int words = (vocab + 31) / 32;
        if (HasMasks && words != MaskWordsPerSlot) throw new ArgumentException($"masks of one batch share a vocabulary ({MaskWordsPerSlot * 32}), not {vocab}");
        MaskWordsPerSlot = words;
        int used = 0;
        for (int s = 0; s < slot; s++) if (MaskOffset[s] >= 0) used += words;
        if (MaskWords.Length < used + words) { var grown = new uint[Math.Max(2 * MaskWords.Length, used + words)]; MaskWords.AsSpan(0, used).CopyTo(grown); MaskWords = grown; }
        MaskOffset[slot] = used;
        MaskWordsUsed = used + words;
        HasMasks = true;
        var mask = MaskWords.AsSpan(used, words);
        mask.Clear();
        return mask;
    }

    /// <summary>Sizes the outputs for <see cref="Count"/> slots; a sampler calls it before writing.</summary>
    public void PrepareOutputs()
    {
        long top = (long)Count * TopLogprobs;
        if (TopIds.Length < top)
        {
            TopIds = new int[top * 2];
            TopValues = new float[top * 2];
        }
    }

    private void GrowSlots(int n)
    {
        LogitRow = Grow(LogitRow, n);
        Temperature = Grow(Temperature, n);
        TopK = Grow(TopK, n);
        TopP = Grow(TopP, n);
        MinP = Grow(MinP, n);
        Uniform = Grow(Uniform, n);
        WantLogprob = Grow(WantLogprob, n);
        AdjustStart = Grow(AdjustStart, n);
        MaskOffset = Grow(MaskOffset, n);
        Ids = Grow(Ids, n);
        Logprobs = Grow(Logprobs, n);
    }

    private static T[] Grow<T>(T[] a, int n)
    {
        Array.Resize(ref a, n);
        return a;
    }
}

/// <summary>
/// A backend that samples where its logits live: only the chosen ids and the requested logprobs
/// cross to the host. <paramref name="logits"/> is the step's F32 [rows, vocab] output.
/// </summary>
public interface IDeviceSampler
{
    void Sample(Tensor logits, SamplingBatch batch);
}
