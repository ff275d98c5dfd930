using Loom.Grains.Abstractions;

namespace Loom.Silo.Structured;

/// <summary>
/// A worker's compiled constraints, keyed by spec (kind and text) for one vocabulary: the same schema
/// is compiled once and shared by every request that uses it. Bounded twice: past <see cref="Capacity"/>
/// specs the least recently used is evicted, and everything the constraints keep (automata, DFA
/// states, transition rows and allowed-token masks, counted approximately: <see cref="Bytes"/>) shares
/// one byte budget, <see cref="BudgetBytes"/> (engine.structured_output_cache_bytes).
/// </summary>
/// <remarks>
/// <para>When a constraint's DFA grows past the budget, other constraints go first: constraints
/// already evicted that in-flight sequences made grow again, then the least recently used cached
/// ones. Each is evicted by spec (a later request compiles it afresh), its masks and rows dropped
/// and its charge released; sequences still walking it keep working, as a dropped mask or row is
/// computed again when asked for (and charged again). If the growing constraint alone is still over
/// budget, its own masks are dropped (all but the one being handed out), then its rows; what cannot be
/// dropped (its automaton and state sets, needed while anyone walks it) stays, so <see cref="Bytes"/>
/// stays within the budget plus one mask unless one constraint's states alone exceed it.</para>
/// <para>Locks: the cache's lock is taken before a DFA's (to drop it), never after: a DFA reports its
/// growth only once it has released its own lock.</para>
/// </remarks>
public sealed class ConstraintCache(TokenVocabulary vocabulary, int capacity = 64, long budgetBytes = ConstraintCache.DefaultBudgetBytes)
{
    public const long DefaultBudgetBytes = 256L * 1024 * 1024;

    private sealed class Entry(StructuredOutput spec)
    {
        public StructuredOutput Spec { get; } = spec;
        public Lazy<CompiledConstraint> Value = null!;
        public LazyDfa? Dfa;                   // known from its first report
        public long Charged;                   // its share of _bytes
        public bool Cached;                    // in _map and _lru; else, when charged, in _orphans
        public LinkedListNode<Entry>? Node;
    }

    private readonly Dictionary<StructuredOutput, Entry> _map = [];
    private readonly LinkedList<Entry> _lru = new();     // cached, most recently used first
    private readonly LinkedList<Entry> _orphans = new(); // evicted, grown again by sequences still walking them
    private readonly object _gate = new();
    private long _bytes;

    public int Capacity { get; } = capacity;
    public long BudgetBytes { get; } = budgetBytes > 0 ? budgetBytes : throw new ArgumentOutOfRangeException(nameof(budgetBytes));
    public TokenVocabulary Vocabulary { get; } = vocabulary;

    /// <summary>Cached specs.</summary>
    public int Count { get { lock (_gate) return _map.Count; } }

    /// <summary>The approximate bytes the constraints keep, as charged to the budget.</summary>
    public long Bytes { get { lock (_gate) return _bytes; } }

    /// <summary>Compiles (once) or finds <paramref name="spec"/>; throws <see cref="StructuredOutputException"/> when it cannot compile.</summary>
    public CompiledConstraint Get(StructuredOutput spec)
    {
        Entry e;
        lock (_gate)
        {
            if (_map.TryGetValue(spec, out var found)) Touch(e = found);
            else
            {
                var entry = e = new Entry(spec);
                entry.Value = new Lazy<CompiledConstraint>(() => new CompiledConstraint(spec, Vocabulary, (dfa, bytes, keep, epoch) => Grew(entry, dfa, bytes, keep, epoch)),
                    LazyThreadSafetyMode.ExecutionAndPublication);
                _map[spec] = entry;
                entry.Cached = true;
                entry.Node = _lru.AddFirst(entry);
                while (_map.Count > Capacity) Release(_lru.Last!.Value);
            }
        }
        try { return e.Value.Value; }
        catch
        {
            lock (_gate) Release(e); // what it charged before failing, and its spec
            throw;
        }
    }

    private void Touch(Entry e)
    {
        _lru.Remove(e.Node!);
        _lru.AddFirst(e.Node!);
    }

    private void Grew(Entry e, LazyDfa dfa, long bytes, int keep, int epoch)
    {
        lock (_gate)
        {
            // Taken before the entry was released: what it counted was dropped or is no longer charged.
            if (epoch != dfa.Epoch) return;
            e.Dfa ??= dfa;
            e.Charged += bytes;
            _bytes += bytes;
            if (e.Cached) Touch(e); // growing is being used
            else e.Node ??= _orphans.AddFirst(e);
            ReleaseOthers(e, _orphans);
            ReleaseOthers(e, _lru);
            if (_bytes > BudgetBytes)
            {
                long freed = dfa.Drop(_bytes - BudgetBytes, keep);
                e.Charged -= freed;
                _bytes -= freed;
            }
        }
    }

    /// <summary>Releases constraints of <paramref name="list"/> but <paramref name="keep"/>, least recently used first, until within budget.</summary>
    private void ReleaseOthers(Entry keep, LinkedList<Entry> list)
    {
        for (var n = list.Last; n is not null && _bytes > BudgetBytes;)
        {
            var previous = n.Previous;
            // An entry still compiling has charged nothing yet: it is left alone.
            if (n.Value != keep && n.Value.Dfa is not null) Release(n.Value);
            n = previous;
        }
    }

    /// <summary>Evicts <paramref name="e"/>: forgets its spec, drops its masks and rows, and takes its charge off the budget.</summary>
    private void Release(Entry e)
    {
        // Its automaton and state sets now live only as long as the sequences walking it; what they
        // make it cache from now on is charged afresh (as an orphan, released first).
        e.Dfa?.Forget();
        _bytes -= e.Charged;
        e.Charged = 0;
        if (e.Node is { } node) node.List!.Remove(node);
        e.Node = null;
        if (e.Cached) _map.Remove(e.Spec);
        e.Cached = false;
    }
}
