using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Models;

namespace Loom.GpuCheck;

/// <summary>
/// One short engine run per backend, without Orleans: the worker's EngineLoop classes stepped by
/// hand. 16 mixed requests (greedy and seeded, n = 1 and 2, shared prompt prefixes, chunked
/// prefill beside decode) go through the scheduler, the paged KV manager, forks that copy KV
/// blocks and device sampling. The candidate's greedy tokens must equal the reference's (the CPU
/// engine) up to the first point where the reference itself had a near tie.
/// </summary>
/// <remarks>
/// The device rounds activations to bf16 before each GEMM and the CPU does not, so logits differ
/// by ~1e-2 and a greedy sequence may take the other branch of a near tie, after which the two
/// continuations are unrelated. A divergence is accepted when the reference's logprob of the
/// candidate's token is within <see cref="NearTie"/> of its own choice; any other difference is a
/// failure. Seeded draws are reported, not gated: their agreement depends on the same ties.
/// </remarks>
public static class EngineRun
{
    /// <summary>
    /// How close (in logprob, i.e. logit) the reference's top two must be for a greedy divergence
    /// to be a tie, not a bug: about the end-to-end check's logit tolerance (5e-2 of this model's
    /// logit scale of ~4.4); bf16 activations are expected to move logits by ~1e-2.
    /// </summary>
    public const float NearTie = 0.25f;

    public const int MaxSteps = 2000;

    public static EngineOptions Options(string sampling) => new()
    {
        NumBlocks = 256,
        BlockSize = 16,
        MaxNumSeqs = 12,
        // Small enough that long prompts are chunked and share steps with decodes.
        MaxNumBatchedTokens = 96,
        KvCacheDType = "bf16",
        Sampling = sampling,
    };

    /// <summary>16 requests: kind i % 4 is greedy, seeded, greedy n = 2, seeded n = 2; every third shares a 40-token prefix.</summary>
    public static IReadOnlyList<GenerationRequest> Requests(int vocab)
    {
        var rng = new Random(11);
        int[] shared = [.. Enumerable.Range(0, 40).Select(_ => rng.Next(3, vocab))];
        var list = new List<GenerationRequest>();
        for (int i = 0; i < 16; i++)
        {
            int length = 3 + i * 37 % 150;
            var prompt = Enumerable.Range(0, length).Select(_ => rng.Next(3, vocab)).ToList();
            if (i % 3 == 0) prompt = [.. shared, .. prompt];
            var p = (i % 4) switch
            {
                0 => new SamplingParams { Temperature = 0 },
                1 => new SamplingParams { Temperature = 0.8f, TopP = 0.9f, Seed = 1000UL + (ulong)i },
                2 => new SamplingParams { Temperature = 0, N = 2 },
                _ => new SamplingParams { Temperature = 1f, TopK = 40, Seed = 2000UL + (ulong)i, N = 2 },
            };
            list.Add(new GenerationRequest($"r{i:D2}", prompt, p with { MaxTokens = 6 + i % 5 * 3, IgnoreEos = true, Logprobs = 5 }));
        }
        return list;
    }

    /// <summary>Each request's deltas per sample index, from one engine run over <paramref name="model"/>.</summary>
    public static Dictionary<string, List<TokenDelta>[]> Drive(LlamaModel model, string sampling, IReadOnlyList<GenerationRequest> requests)
    {
        using var engine = new EngineLoop(model, Options(sampling), startThread: false);
        var streams = requests.Select(r => (r, Stream: engine.Submit(r))).ToList();
        int steps = 0;
        while (engine.Step())
            if (++steps >= MaxSteps) throw new InvalidOperationException($"the engine still had work after {MaxSteps} steps");
        // Every stream is complete now (the engine ran until idle), so reading them never waits.
        var result = new Dictionary<string, List<TokenDelta>[]>();
        foreach (var (r, stream) in streams)
        {
            var perSample = Enumerable.Range(0, r.Sampling.N).Select(_ => new List<TokenDelta>()).ToArray();
            var e = stream.GetAsyncEnumerator();
            while (e.MoveNextAsync().AsTask().GetAwaiter().GetResult()) perSample[e.Current.Index].Add(e.Current);
            result[r.RequestId] = perSample;
        }
        return result;
    }

    /// <summary>What the comparison found: greedy tokens compared and agreeing, accepted near-tie divergences, and the failures.</summary>
    public sealed record Outcome(int GreedySamples, int GreedyTokens, int AgreedTokens, int NearTies, int SeededSamples, int SeededExact, IReadOnlyList<string> Problems)
    {
        public bool Ok => Problems.Count == 0 && AgreedTokens * 2 >= GreedyTokens;

        public string Detail =>
            $"greedy {AgreedTokens}/{GreedyTokens} tokens agree over {GreedySamples} samples ({NearTies} near-tie divergences); " +
            $"seeded {SeededExact}/{SeededSamples} samples identical" + (Problems.Count > 0 ? "; " + string.Join("; ", Problems.Take(5)) : "");
    }

    public static Outcome Compare(IReadOnlyList<GenerationRequest> requests, Dictionary<string, List<TokenDelta>[]> reference, Dictionary<string, List<TokenDelta>[]> candidate)
    {
        var problems = new List<string>();
        int greedySamples = 0, greedyTokens = 0, agreed = 0, ties = 0, seededSamples = 0, seededExact = 0;
        foreach (var r in requests)
        {
            var p = r.Sampling;
            for (int k = 0; k < p.N; k++)
            {
                var want = reference[r.RequestId][k];
                var got = candidate[r.RequestId][k];
                string name = $"{r.RequestId}#{k}";
                if (Shape(got, p.MaxTokens) is { } bad) { problems.Add($"{name}: {bad}"); continue; }
                if (Shape(want, p.MaxTokens) is { } badRef) { problems.Add($"{name} (reference): {badRef}"); continue; }
                if (p.Temperature > 0)
                {
                    seededSamples++;
                    if (want.Select(d => d.TokenId).SequenceEqual(got.Select(d => d.TokenId))) seededExact++;
                    continue;
                }
                greedySamples++;
                greedyTokens += want.Count;
                for (int i = 0; i < want.Count; i++)
                {
                    int w = want[i].TokenId, g = got[i].TokenId;
                    if (w == g) { agreed++; continue; }
                    // The first divergence: the reference must have rated the candidate's token almost as high as its own.
                    var top = want[i].TopLogprobs ?? [];
                    var mine = top.FirstOrDefault(t => t.TokenId == w);
                    var theirs = top.FirstOrDefault(t => t.TokenId == g);
                    bool listed = top.Any(t => t.TokenId == g) && top.Any(t => t.TokenId == w);
                    if (listed && mine.Logprob - theirs.Logprob <= NearTie) ties++;
                    else problems.Add($"{name} token {i}: {g}, reference {w} " +
                        (listed ? $"(reference logprob gap {mine.Logprob - theirs.Logprob:F3} > {NearTie})" : "(not in the reference's top 5)"));
                    break;
                }
            }
        }
        return new Outcome(greedySamples, greedyTokens, agreed, ties, seededSamples, seededExact, problems);
    }

    /// <summary>A complete sample: max_tokens tokens (ignore_eos), the last one finishing for length, no error, no abort.</summary>
    private static string? Shape(List<TokenDelta> deltas, int maxTokens)
    {
        if (deltas.Count != maxTokens || deltas.Any(d => d.TokenId < 0)) return $"{deltas.Count(d => d.TokenId >= 0)} tokens, expected {maxTokens}";
        if (deltas[^1].Finish != FinishReason.Length) return $"finished with {deltas[^1].Finish?.ToString() ?? "nothing"}, expected length";
        return null;
    }

    /// <summary>
    /// The check: the CPU engine (device-sampling twin, so seeded draws follow the device's
    /// algorithm) against <paramref name="candidate"/> with sampling on auto (on the device when
    /// its backend can).
    /// </summary>
    public static Outcome? Check(CheckLog log, LlamaModel reference, LlamaModel candidate)
    {
        Outcome? outcome = null;
        log.Run("engine run (16 mixed requests)", () =>
        {
            var requests = Requests(reference.Config.VocabSize);
            var want = Drive(reference, "device", requests);
            var got = Drive(candidate, "auto", requests);
            outcome = Compare(requests, want, got);
            if (outcome.Ok) log.Pass("engine run (16 mixed requests)", outcome.Detail);
            else log.Fail("engine run (16 mixed requests)", outcome.Detail);
        });
        return outcome;
    }
}
