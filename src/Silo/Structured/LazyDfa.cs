using System.Runtime.InteropServices;

namespace Loom.Silo.Structured;

/// <summary>
/// The subset construction of a <see cref="ByteNfa"/>, done lazily: a DFA state (a set of NFA
/// states) is created when first reached, its transitions when first followed, and its allowed-token
/// mask when first asked for, by walking the vocabulary trie from it and skipping every subtree
/// whose prefix leads nowhere. Everything is cached, so after warm-up a mask is one copy.
/// Thread-safe: the cache is shared by every sequence (and engine) using the same constraint.
/// </summary>
public sealed class LazyDfa
{
    /// <summary>The most DFA states one constraint may create; past it, compilation of new states fails.</summary>
    public const int MaxDfaStates = 200_000;

    public const int Dead = 0;

    private readonly ByteNfa _nfa;
    private readonly TokenVocabulary _vocab;
    private readonly byte[] _classOf = new byte[256];
    private readonly int _classes;
    private readonly Dictionary<int[], int> _ids = new(new SetComparer());
    private readonly List<int[]> _sets = [];
    private readonly List<bool> _accept = [];
    private int[]?[] _rows = new int[]?[64];
    private uint[]?[] _masks = new uint[]?[64];
    private bool[] _final = new bool[64];
    private readonly object _gate = new();

    public int Start { get; }
    public int MaskWords { get; }
    public int StateCount { get { lock (_gate) return _sets.Count; } }

    public LazyDfa(ByteNfa nfa, TokenVocabulary vocab)
    {
        _nfa = nfa;
        _vocab = vocab;
        MaskWords = (vocab.Size + 31) / 32;
        // Byte classes: bytes no range boundary separates behave the same everywhere.
        var cut = new bool[257];
        cut[0] = true;
        for (int s = 0; s < nfa.Count; s++)
            if (nfa.IsRange(s)) { cut[nfa.Lo(s)] = true; cut[nfa.Hi(s) + 1] = true; }
        int c = -1;
        for (int b = 0; b < 256; b++) { if (cut[b]) c++; _classOf[b] = (byte)c; }
        _classes = c + 1;
        lock (_gate)
        {
            Intern([]); // state 0: dead
            Start = Intern(Closure([nfa.Start]));
        }
    }

    public bool IsAccepting(int state) { lock (_gate) return _accept[state]; }

    /// <summary>Whether nothing but the end may follow: accepting, and no byte leads on.</summary>
    public bool IsFinal(int state) { lock (_gate) { RowLocked(state); return _final[state]; } }

    /// <summary>The state after <paramref name="bytes"/> from <paramref name="state"/> (Dead when they do not fit).</summary>
    public int Walk(int state, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            if (state == Dead) return Dead;
            state = Row(state)[_classOf[b]];
        }
        return state;
    }

    /// <summary>The tokens allowed in <paramref name="state"/> (EOS not included), computed once.</summary>
    public uint[] Mask(int state)
    {
        var m = Volatile.Read(ref _masks[state]);
        if (m is not null) return m;
        lock (_gate)
        {
            if (_masks[state] is { } done) return done;
            m = ComputeMask(state);
            Volatile.Write(ref _masks[state], m);
            return m;
        }
    }

    private uint[] ComputeMask(int state)
    {
        var mask = new uint[MaskWords];
        var t = _vocab.Trie;
        Span<int> at = stackalloc int[t.MaxDepth + 1];
        at[0] = state;
        var bytes = t.Byte; var depth = t.Depth; var end = t.SubtreeEnd; var count = t.TokenCount; var start = t.TokenStart; var tokens = t.Tokens;
        int n = t.Count;
        for (int i = 0; i < n;)
        {
            int d = depth[i];
            int next = RowLocked(at[d - 1])[_classOf[bytes[i]]];
            if (next == Dead) { i = end[i]; continue; }
            at[d] = next;
            for (int k = start[i], e = k + count[i]; k < e; k++) { int tok = tokens[k]; mask[tok >> 5] |= 1u << (tok & 31); }
            i++;
        }
        return mask;
    }

    private int[] Row(int state)
    {
        var r = Volatile.Read(ref _rows[state]);
        if (r is not null) return r;
        lock (_gate) return RowLocked(state);
    }

    private int[] RowLocked(int state)
    {
        if (_rows[state] is { } r) return r;
        var buckets = new List<int>?[_classes];
        foreach (int s in _sets[state])
        {
            if (!_nfa.IsRange(s)) continue;
            for (int c = _classOf[_nfa.Lo(s)], e = _classOf[_nfa.Hi(s)]; c <= e; c++) (buckets[c] ??= []).Add(_nfa.Next(s));
        }
        var row = new int[_classes];
        bool any = false;
        for (int c = 0; c < _classes; c++)
        {
            row[c] = buckets[c] is { } targets ? Intern(Closure(targets)) : Dead;
            any |= row[c] != Dead;
        }
        _final[state] = _accept[state] && !any;
        Volatile.Write(ref _rows[state], row);
        return row;
    }

    /// <summary>The NFA states reachable by epsilons, keeping those that consume a byte and the accept state.</summary>
    private int[] Closure(List<int> from)
    {
        var seen = new HashSet<int>();
        var stack = new Stack<int>(from);
        var kept = new List<int>();
        while (stack.Count > 0)
        {
            int s = stack.Pop();
            if (!seen.Add(s)) continue;
            if (_nfa.IsRange(s) || s == _nfa.Accept) kept.Add(s);
            else foreach (int e in _nfa.Epsilons(s)) stack.Push(e);
        }
        kept.Sort();
        return [.. kept];
    }

    private int Intern(int[] set)
    {
        if (_ids.TryGetValue(set, out int id)) return id;
        if (set.Length == 0 && _sets.Count > 0) return Dead;
        if (_sets.Count >= MaxDfaStates)
            throw new StructuredOutputException($"the constraint needs more than {MaxDfaStates} automaton states");
        id = _sets.Count;
        _sets.Add(set);
        _accept.Add(Array.BinarySearch(set, _nfa.Accept) >= 0);
        _ids[set] = id;
        if (id == _rows.Length)
        {
            Array.Resize(ref _rows, id * 2);
            Array.Resize(ref _masks, id * 2);
            Array.Resize(ref _final, id * 2);
        }
        return id;
    }

    private sealed class SetComparer : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? x, int[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(int[] obj)
        {
            var h = new HashCode();
            h.AddBytes(MemoryMarshal.AsBytes(obj.AsSpan()));
            return h.ToHashCode();
        }
    }
}
