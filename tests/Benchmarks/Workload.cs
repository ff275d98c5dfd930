namespace Loom.Benchmarks;

/// <summary>One benchmark request: prompt token ids and the exact number of tokens to generate.</summary>
public sealed record WorkItem(int[] Prompt, int OutputTokens);

/// <summary>
/// A deterministic synthetic mix shaped like ShareGPT: log-normal prompt and output lengths
/// (a few long conversations, many short ones), outputs about twice as long as prompts as in
/// the PagedAttention paper's ShareGPT trace (mean input 161, output 338 tokens). The lengths
/// are scaled down about 3x so 256 requests finish in minutes on a 2-core CPU; the spreads
/// (log-normal sigma 0.9 and 0.8) are unchanged from the first version of this mix.
/// </summary>
public static class Workload
{
    public static List<WorkItem> ShareGptLike(int count, int vocab, int maxPrompt = 1024, int maxOutput = 512, ulong seed = 2024)
    {
        var rng = new SplitMix(seed);
        var items = new List<WorkItem>(count);
        for (int i = 0; i < count; i++)
        {
            int p = (int)Math.Clamp(Math.Round(Math.Exp(3.5 + 0.9 * rng.Gaussian())), 4, maxPrompt);
            int o = (int)Math.Clamp(Math.Round(Math.Exp(4.2 + 0.8 * rng.Gaussian())), 2, maxOutput);
            var prompt = new int[p];
            for (int t = 0; t < p; t++) prompt[t] = 3 + (int)(rng.Next() % (ulong)(vocab - 3));
            items.Add(new WorkItem(prompt, o));
        }
        return items;
    }

    private sealed class SplitMix(ulong state)
    {
        private Loom.Silo.Models.SplitMix64 _rng = new(state);

        public ulong Next() => _rng.Next();

        public double Uniform() => ((Next() >> 11) + 0.5) / (1UL << 53);

        public double Gaussian() => Math.Sqrt(-2 * Math.Log(Uniform())) * Math.Cos(2 * Math.PI * Uniform());
    }
}
