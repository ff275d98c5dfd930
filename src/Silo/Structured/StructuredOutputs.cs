using Loom.Grains.Abstractions;
using Loom.Silo.Engine;

namespace Loom.Silo.Structured;

/// <summary>
/// Wires structured outputs into a worker's engine: each request's spec is compiled (or found in
/// the worker's bounded <see cref="ConstraintCache"/>) on the submitting thread, where a spec that
/// does not compile is refused with a 400 naming response_format, and each new sequence gets its own
/// walk of the compiled automaton (advanced past resumed tokens). The vocabulary is read from
/// tokenizer.json on the first structured request, not at start-up.
/// </summary>
public static class StructuredOutputs
{
    /// <param name="budgetBytes">What all the cached constraints may keep (engine.structured_output_cache_bytes).</param>
    public static ConstraintCacheHandle Attach(EngineFrontend frontend, Func<TokenVocabulary> vocabulary, IReadOnlyList<int> eosTokenIds,
        long budgetBytes = ConstraintCache.DefaultBudgetBytes, int capacity = 64)
    {
        var handle = new ConstraintCacheHandle(new Lazy<ConstraintCache>(() => new ConstraintCache(vocabulary(), capacity, budgetBytes)));
        // What Prepare compiled, held by the request: the budget may evict the spec before the engine
        // thread creates the sequences, which must then neither compile it again there nor each get their own.
        var prepared = new System.Runtime.CompilerServices.ConditionalWeakTable<GenerationRequest, CompiledConstraint>();
        frontend.Prepare = r =>
        {
            if (r.Sampling.Structured is not { } spec) return;
            try { prepared.AddOrUpdate(r, handle.Cache.Get(spec)); }
            catch (StructuredOutputException e) { throw new EngineRequestException("response_format", e.Message); }
        };
        frontend.Constraints = (r, _) => r.Sampling.Structured is not { } spec ? null
            : (prepared.TryGetValue(r, out var compiled) ? compiled : handle.Cache.Get(spec)).Start(eosTokenIds, r.ResumeTokenIds);
        return handle;
    }

    /// <summary>The vocabulary of a model folder's tokenizer.json, or the byte vocabulary when there is none.</summary>
    public static TokenVocabulary Vocabulary(string? tokenizerJson, int vocabSize, IReadOnlyList<int> eosTokenIds) =>
        string.IsNullOrEmpty(tokenizerJson) ? TokenVocabulary.ByteLevel(vocabSize, eosTokenIds) : TokenVocabulary.FromTokenizerJson(tokenizerJson, vocabSize);
}

/// <summary>The worker's constraint cache, created on first use.</summary>
public sealed class ConstraintCacheHandle(Lazy<ConstraintCache> cache)
{
    public ConstraintCache Cache => cache.Value;

    /// <summary>What the cache keeps (0 before the first structured request), without creating it.</summary>
    public long Bytes => cache.IsValueCreated ? cache.Value.Bytes : 0;
}
