namespace Loom.Silo.Structured;

/// <summary>A constraint that cannot be compiled (bad syntax, an unsupported feature, too large).</summary>
public sealed class StructuredOutputException(string message, string? keyword = null) : Exception(message)
{
    /// <summary>The schema keyword or syntax element at fault, when there is one.</summary>
    public string? Keyword { get; } = keyword;
}

/// <summary>
/// A Thompson NFA over bytes, built from a <see cref="Grammar"/> in continuation-passing style
/// (each pattern is compiled given the state that follows it). Rule references are expanded
/// inline; a rule nested inside itself more than <see cref="MaxRecursion"/> times matches nothing,
/// so recursive grammars and schemas become regular with a documented nesting bound.
/// </summary>
public sealed class ByteNfa
{
    /// <summary>How deeply one rule (or $ref) may nest inside itself.</summary>
    public const int MaxRecursion = 4;

    /// <summary>The most states a constraint may compile to.</summary>
    public const int MaxStates = 400_000;

    // State s: ranges [Lo[s], Hi[s]] → Next[s] when Lo[s] <= Hi[s]; else an epsilon split to Eps[s].
    private readonly List<byte> _lo = [];
    private readonly List<byte> _hi = [];
    private readonly List<int> _next = [];
    private readonly List<int[]> _eps = [];
    private readonly Dictionary<string, int> _depth = new(StringComparer.Ordinal);
    private readonly Dictionary<(Pattern, int, int), int> _shared = [];
    private readonly Dictionary<(string, int, int), int> _rules = [];
    private readonly Grammar _grammar;
    private int _context, _contexts;

    public int Start { get; }
    public int Accept { get; }
    public int Count => _next.Count;

    public ByteNfa(Grammar grammar)
    {
        _grammar = grammar;
        Accept = NewSplit([]);
        Start = Build(new RuleRef(grammar.Root), Accept);
        // The memo tables only serve the build; a cached constraint would otherwise keep them for nothing.
        _shared.Clear(); _shared.TrimExcess();
        _rules.Clear(); _rules.TrimExcess();
        long bytes = Count * 24L; // lo, hi, next and the epsilon reference, with the lists' spare room
        foreach (var e in _eps) if (e is not null) bytes += 24 + 4L * e.Length;
        ApproximateBytes = bytes;
    }

    /// <summary>What the automaton keeps, approximately (for the constraint cache's byte budget).</summary>
    public long ApproximateBytes { get; }

    public bool IsRange(int s) => _lo[s] <= _hi[s] && _eps[s] is null;
    public byte Lo(int s) => _lo[s];
    public byte Hi(int s) => _hi[s];
    public int Next(int s) => _next[s];
    public int[] Epsilons(int s) => _eps[s] ?? [];

    private int NewRange(byte lo, byte hi, int next)
    {
        Grow();
        _lo.Add(lo); _hi.Add(hi); _next.Add(next); _eps.Add(null!);
        return _next.Count - 1;
    }

    private int NewSplit(int[] targets)
    {
        Grow();
        _lo.Add(1); _hi.Add(0); _next.Add(-1); _eps.Add(targets);
        return _next.Count - 1;
    }

    private void Grow()
    {
        if (_next.Count >= MaxStates)
            throw new StructuredOutputException($"the constraint is too large to compile (more than {MaxStates} automaton states); lower its lengths, counts or nesting");
    }

    private int Build(Pattern p, int next)
    {
        switch (p)
        {
            case Lit lit:
                for (int i = lit.Bytes.Length - 1; i >= 0; i--) next = NewRange(lit.Bytes[i], lit.Bytes[i], next);
                return next;
            case Chars chars:
            {
                var seqs = chars.Set.Utf8Sequences();
                var starts = new int[seqs.Count];
                for (int k = 0; k < seqs.Count; k++)
                {
                    int s = next;
                    for (int i = seqs[k].Length - 1; i >= 0; i--) s = NewRange(seqs[k][i].Lo, seqs[k][i].Hi, s);
                    starts[k] = s;
                }
                return starts.Length == 1 ? starts[0] : NewSplit(starts);
            }
            case Seq seq:
                for (int i = seq.Items.Length - 1; i >= 0; i--) next = Build(seq.Items[i], next);
                return next;
            case Alt alt:
            {
                if (alt.Items.Length == 1) return Build(alt.Items[0], next);
                var starts = new int[alt.Items.Length];
                for (int i = 0; i < starts.Length; i++) starts[i] = Build(alt.Items[i], next);
                return NewSplit(starts);
            }
            case Repeat r:
                return BuildRepeat(r, next);
            case Shared sh:
            {
                var key = (sh.Item, next, _context);
                if (_shared.TryGetValue(key, out int done)) return done;
                int s = Build(sh.Item, next);
                _shared[key] = s;
                return s;
            }
            case RuleRef rr:
            {
                if (!_grammar.Rules.TryGetValue(rr.Name, out var body))
                    throw new StructuredOutputException($"the rule '{rr.Name}' is not defined", rr.Name);
                int depth = _depth.GetValueOrDefault(rr.Name);
                if (depth >= MaxRecursion) return NewSplit([]); // nested too deep: this branch matches nothing
                // The same rule with the same continuation in the same context compiles once.
                var key = (rr.Name, next, _context);
                if (_rules.TryGetValue(key, out int built)) return built;
                _depth[rr.Name] = depth + 1;
                int saved = _context;
                _context = ++_contexts; // a fresh context: shared parts are not reused across depths
                try { built = Build(body, next); }
                finally { _depth[rr.Name] = depth; _context = saved; }
                _rules[key] = built;
                return built;
            }
            default:
                throw new ArgumentException($"unknown pattern {p.GetType().Name}");
        }
    }

    private int BuildRepeat(Repeat r, int next)
    {
        if (r.Min < 0 || (r.Max >= 0 && r.Max < r.Min)) throw new StructuredOutputException($"bad repetition {{{r.Min},{r.Max}}}");
        int s;
        if (r.Max < 0)
        {
            // loop: (item loop | next)
            int loop = NewSplit([]);
            int body = Build(r.Item, loop);
            _eps[loop] = [body, next];
            s = loop;
        }
        else
        {
            // optional copies: t_k = (item t_{k-1} | next)
            s = next;
            for (int k = 0; k < r.Max - r.Min; k++) s = NewSplit([Build(r.Item, s), next]);
        }
        for (int k = 0; k < r.Min; k++) s = Build(r.Item, s);
        return s;
    }
}
