using Loom.Grains.Abstractions;
using Loom.Silo.Engine;

namespace Loom.Silo.Structured;

/// <summary>
/// One structured output compiled against one vocabulary: the byte automaton and its lazily built
/// DFA with a cached allowed-token mask per state. Shared by every request with the same spec on a
/// worker (<see cref="ConstraintCache"/>); each sequence walks it with its own <see cref="TokenConstraint"/>.
/// </summary>
public sealed class CompiledConstraint
{
    /// <param name="grew">Where the DFA reports what it keeps (a <see cref="ConstraintCache"/>'s budget); null: unbounded.</param>
    public CompiledConstraint(StructuredOutput spec, TokenVocabulary vocabulary, DfaGrowth? grew = null, int maxDfaStates = LazyDfa.MaxDfaStates)
    {
        Spec = spec;
        Vocabulary = vocabulary;
        Dfa = new LazyDfa(new ByteNfa(ConstraintCompiler.ToGrammar(spec)), vocabulary, grew, maxDfaStates);
        _ = Dfa.Mask(Dfa.Start); // the first step's mask, computed once here rather than on the engine thread
    }

    public StructuredOutput Spec { get; }
    public TokenVocabulary Vocabulary { get; }
    public LazyDfa Dfa { get; }

    /// <summary>A fresh walk for one sequence, advanced past any tokens it already produced (a resumed request).</summary>
    public TokenConstraint Start(IReadOnlyList<int> eosTokenIds, IReadOnlyList<int>? generated = null)
    {
        var c = new TokenConstraint(this, eosTokenIds);
        if (generated is not null) foreach (int t in generated) c.Advance(t);
        return c;
    }
}

/// <summary>
/// One sequence's place in a <see cref="CompiledConstraint"/>: the allowed tokens are the cached
/// mask of its DFA state, plus EOS exactly where the constraint accepts. Once the output is complete
/// and nothing may follow, EOS is the only token allowed, so a finished structure always stops.
/// </summary>
public sealed class TokenConstraint(CompiledConstraint compiled, IReadOnlyList<int> eosTokenIds) : ITokenConstraint
{
    private int _state = compiled.Dfa.Start;
    private bool _ended;

    /// <summary>The compiled constraint this walk follows.</summary>
    public CompiledConstraint Compiled => compiled;

    /// <summary>The DFA state (LazyDfa.Dead when a token that did not fit was forced in, or the automaton outgrew its limit).</summary>
    public int State => _state;

    /// <summary>
    /// Why the walk stopped early: the automaton needed more states than its limit. It then allows
    /// only EOS, so the one sequence ends ("stop", its output cut short) instead of the exception
    /// failing every request of the engine step (and, repeated, making the worker sick).
    /// </summary>
    public string? Overflow { get; private set; }

    public bool IsAccepting => _state != LazyDfa.Dead && compiled.Dfa.IsAccepting(_state);

    /// <summary>Whether EOS is all <see cref="FillAllowed"/> allows: ended, finished, or off the automaton.</summary>
    public bool IsComplete
    {
        get
        {
            try { return _ended || _state == LazyDfa.Dead || compiled.Dfa.IsFinal(_state); }
            catch (StructuredOutputException e) { Stop(e); return true; }
        }
    }

    public void FillAllowed(Span<uint> allowed)
    {
        try { Fill(allowed); }
        catch (StructuredOutputException e) { Stop(e); allowed.Clear(); Fill(allowed); }
    }

    private void Stop(StructuredOutputException e)
    {
        Overflow = e.Message;
        _state = LazyDfa.Dead;
    }

    private void Fill(Span<uint> allowed)
    {
        var dfa = compiled.Dfa;
        bool end = _ended || _state == LazyDfa.Dead || dfa.IsAccepting(_state);
        if (!_ended && _state != LazyDfa.Dead && !dfa.IsFinal(_state)) dfa.Mask(_state).AsSpan(0, Math.Min(allowed.Length, dfa.MaskWords)).CopyTo(allowed);
        if (end)
            foreach (int eos in eosTokenIds)
                if ((uint)(eos >> 5) < (uint)allowed.Length) allowed[eos >> 5] |= 1u << (eos & 31);
    }

    public void Advance(int token)
    {
        if (_ended) return;
        foreach (int eos in eosTokenIds)
            if (eos == token) { _ended = true; return; }
        try { _state = compiled.Dfa.Walk(_state, compiled.Vocabulary.Bytes(token)); }
        catch (StructuredOutputException e) { Stop(e); }
    }
}
