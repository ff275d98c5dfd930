using Loom.Grains.Abstractions;

namespace Loom.Silo.Structured;

/// <summary>
/// A worker's compiled constraints, keyed by spec (kind and text) for one vocabulary: the same schema
/// is compiled once and shared by every request that uses it. Bounded: past <see cref="Capacity"/>
/// entries the least recently used is dropped (sequences still walking it keep their reference).
/// </summary>
public sealed class ConstraintCache(TokenVocabulary vocabulary, int capacity = 64)
{
    private readonly Dictionary<StructuredOutput, LinkedListNode<(StructuredOutput Spec, Lazy<CompiledConstraint> Value)>> _map = [];
    private readonly LinkedList<(StructuredOutput Spec, Lazy<CompiledConstraint> Value)> _lru = new();
    private readonly object _gate = new();

    public int Capacity { get; } = capacity;
    public TokenVocabulary Vocabulary { get; } = vocabulary;
    public int Count { get { lock (_gate) return _map.Count; } }

    /// <summary>Compiles (once) or finds <paramref name="spec"/>; throws <see cref="StructuredOutputException"/> when it cannot compile.</summary>
    public CompiledConstraint Get(StructuredOutput spec)
    {
        Lazy<CompiledConstraint> lazy;
        lock (_gate)
        {
            if (_map.TryGetValue(spec, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                lazy = node.Value.Value;
            }
            else
            {
                lazy = new Lazy<CompiledConstraint>(() => new CompiledConstraint(spec, Vocabulary), LazyThreadSafetyMode.ExecutionAndPublication);
                _map[spec] = _lru.AddFirst((spec, lazy));
                while (_map.Count > Capacity)
                {
                    var last = _lru.Last!;
                    _lru.RemoveLast();
                    _map.Remove(last.Value.Spec);
                }
            }
        }
        try { return lazy.Value; }
        catch
        {
            lock (_gate)
                if (_map.TryGetValue(spec, out var node) && node.Value.Value == lazy) { _lru.Remove(node); _map.Remove(spec); }
            throw;
        }
    }
}
