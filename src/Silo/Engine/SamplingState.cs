using Loom.Grains.Abstractions;

using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>
/// What the the sampling algorithm needs to know about one sequence: its parameters, the stop ids, the
/// token history the penalties look at, how many tokens it has generated, and its random stream.
/// </summary>
/// <remarks>
/// <para>Randomness is counter-based (<see cref="CounterRng"/>): output token k draws
/// <c>CounterRng.Uniform(Seed, k)</c>. <see cref="Seed"/> is the request's seed plus the sample index
/// (vLLM's rule for n &gt; 1: sample i of a seeded request uses seed + i, wrapping), or, for an unseeded
/// request, 64 fresh random bits drawn once at creation. Record <see cref="Seed"/> with the request if
/// it may have to be resumed elsewhere: <see cref="Resume"/> needs it to continue identically.</para>
/// <para>History: repetition penalty looks at prompt ∪ output tokens; presence and frequency penalties
/// at output tokens only (vLLM). <see cref="Append"/> records one sampled token; sampling
/// does not append, so call <c>Append</c> yourself once the token is accepted, then
/// <see cref="Finish"/>.</para>
/// <para>Not thread-safe; one state belongs to one sequence.</para>
/// </remarks>
public sealed class SamplingState
{
    private readonly Dictionary<int, int> _outputCounts = [];
    private readonly HashSet<int>? _seen; // prompt ∪ output, only kept when repetition penalty is on
    private readonly int[] _stopIds;
    private readonly int[] _eosIds;

    /// <summary>A fresh sequence: nothing generated yet.</summary>
    /// <param name="parameters">The request's sampling parameters (assumed valid).</param>
    /// <param name="promptTokenIds">The prompt, for the repetition penalty.</param>
    /// <param name="eosTokenIds">The model's end-of-sequence ids; they stop the sequence unless IgnoreEos.</param>
    /// <param name="sampleIndex">Which of the request's n samples this is (0-based).</param>
    /// <param name="stopIds">The request's <see cref="StopSet"/>, computed once for all its samples; null: computed here.</param>
    public SamplingState(SamplingParams parameters, ReadOnlySpan<int> promptTokenIds, ReadOnlySpan<int> eosTokenIds, int sampleIndex = 0, int[]? stopIds = null)
        : this(parameters, promptTokenIds, default, eosTokenIds, sampleIndex, DeriveSeed(parameters, sampleIndex), stopIds)
    {
    }

    private SamplingState(SamplingParams parameters, ReadOnlySpan<int> promptTokenIds, ReadOnlySpan<int> generatedTokenIds,
        ReadOnlySpan<int> eosTokenIds, int sampleIndex, ulong seed, int[]? stopIds)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegative(sampleIndex);
        Params = parameters;
        SampleIndex = sampleIndex;
        Seed = seed;
        PromptLength = promptTokenIds.Length;

        _stopIds = stopIds ?? StopSet(parameters, eosTokenIds);
        _eosIds = eosTokenIds.ToArray();

        if (parameters.RepetitionPenalty != 1f)
        {
            _seen = [];
            foreach (var id in promptTokenIds) _seen.Add(id);
        }
        foreach (var id in generatedTokenIds) Append(id);
    }

    /// <summary>
    /// Resumes a sequence that already generated <paramref name="generatedTokenIds"/> (k tokens) elsewhere,
    /// e.g. after a silo failed and the request was resubmitted with its output appended to the prompt.
    /// The state starts at output index k, counts the k tokens as output for the penalties, min_tokens and
    /// max_tokens, and, given the original <paramref name="seed"/> (the first state's <see cref="Seed"/>),
    /// samples exactly what the uninterrupted sequence would have sampled from the same logits.
    /// </summary>
    /// <param name="parameters">The original request's parameters (MaxTokens still counts from the original start).</param>
    /// <param name="promptTokenIds">The original prompt, without the generated tokens.</param>
    /// <param name="generatedTokenIds">The tokens generated so far, in order.</param>
    /// <param name="eosTokenIds">The model's end-of-sequence ids.</param>
    /// <param name="seed">The effective seed of the interrupted sequence.</param>
    /// <param name="sampleIndex">Which of the request's n samples this is.</param>
    public static SamplingState Resume(SamplingParams parameters, ReadOnlySpan<int> promptTokenIds, ReadOnlySpan<int> generatedTokenIds,
        ReadOnlySpan<int> eosTokenIds, ulong seed, int sampleIndex = 0, int[]? stopIds = null)
        => new(parameters, promptTokenIds, generatedTokenIds, eosTokenIds, sampleIndex, seed, stopIds);

    /// <summary>A fresh sequence with an explicit <paramref name="seed"/> (see <see cref="DeriveSeed"/>) and the request's stop set.</summary>
    public static SamplingState Create(SamplingParams parameters, ReadOnlySpan<int> promptTokenIds, ReadOnlySpan<int> eosTokenIds, int sampleIndex,
        ulong seed, int[]? stopIds = null) => new(parameters, promptTokenIds, default, eosTokenIds, sampleIndex, seed, stopIds);

    /// <summary>
    /// The ids that stop a sequence (EOS unless IgnoreEos, ∪ StopTokenIds), sorted and distinct:
    /// built in O(n log n) and looked up by binary search on every token. The engine builds it once
    /// per request on the submitting thread, so a long stop_token_ids list costs its owner, not the
    /// engine thread everyone shares.
    /// </summary>
    public static int[] StopSet(SamplingParams parameters, ReadOnlySpan<int> eosTokenIds)
    {
        var stops = new HashSet<int>(parameters.StopTokenIds);
        if (!parameters.IgnoreEos) foreach (var id in eosTokenIds) stops.Add(id);
        int[] ids = [.. stops];
        Array.Sort(ids);
        return ids;
    }

    /// <summary>The effective seed of sample <paramref name="sampleIndex"/>: Seed + index when the request is
    /// seeded (vLLM's parallel-sampling rule), else a fresh random seed.</summary>
    public static ulong DeriveSeed(SamplingParams parameters, int sampleIndex)
        => parameters.Seed is { } s ? unchecked(s + (ulong)sampleIndex) : CounterRng.NewSeed();

    public SamplingParams Params { get; }

    /// <summary>The seed this sequence's draws use; output token k draws CounterRng.Uniform(Seed, k).</summary>
    public ulong Seed { get; }

    public int SampleIndex { get; }

    public int PromptLength { get; }

    /// <summary>Output tokens generated so far (including any a resumed state started with): the next
    /// token sampled is output index <c>Generated</c>.</summary>
    public int Generated { get; private set; }



    /// <summary>The ids that stop the sequence: EOS (unless IgnoreEos) ∪ StopTokenIds, distinct and ascending.</summary>
    public ReadOnlySpan<int> StopTokenIds => _stopIds;

    /// <summary>
    /// Whether min_tokens still masks the stop ids for the next token: not once a structured output is
    /// complete, where EOS is the only token left (the constraint wins over min_tokens).
    /// </summary>
    public bool StopsMasked => Generated < Params.MinTokens && Constraint is not { IsComplete: true };

    /// <summary>How many times <paramref name="token"/> occurs in the output.</summary>
    public int OutputCount(int token) => _outputCounts.GetValueOrDefault(token);

    /// <summary>The uniform draw for the next token: CounterRng.Uniform(Seed, Generated).</summary>
    public double NextUniform() => CounterRng.Uniform(Seed, (ulong)Generated);

    /// <summary>The structured output this sequence must follow, or null.</summary>
    public ITokenConstraint? Constraint { get; set; }

    /// <summary>Records one accepted output token.</summary>
    public void Append(int token)
    {
        Constraint?.Advance(token);
        Generated++;
        _outputCounts[token] = _outputCounts.GetValueOrDefault(token) + 1;
        _seen?.Add(token);
    }

    /// <summary>Whether <paramref name="token"/> is one of <see cref="StopTokenIds"/>.</summary>
    public bool IsStopId(int token) => Array.BinarySearch(_stopIds, token) >= 0;

    /// <summary>
    /// Whether the just-appended <paramref name="token"/> stops the sequence: a stop id once min_tokens is
    /// reached, or an EOS that ended a structured output (before min_tokens and under ignore_eos too:
    /// nothing may follow it, so going on would only repeat EOS).
    /// </summary>
    public bool IsStop(int token) => Generated >= Params.MinTokens && IsStopId(token)
        || Array.IndexOf(_eosIds, token) >= 0 && Constraint is { IsComplete: true };

    /// <summary>After <see cref="Append"/>: Stop for a stop token, Length once Generated reaches MaxTokens, else null (Stop wins).</summary>
    public FinishReason? Finish(int token) => IsStop(token) ? FinishReason.Stop : Generated >= Params.MaxTokens ? FinishReason.Length : null;

    internal Dictionary<int, int> OutputCounts => _outputCounts;

    internal HashSet<int>? PromptAndOutputSet => _seen;
}
