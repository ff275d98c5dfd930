using System.Runtime.InteropServices;

namespace Loom.Silo.Structured;

/// <summary>
/// The subset construction of a <see cref="ByteNfa"/>, done lazily: a DFA state (a set of NFA
/// states) is created when first reached, its transitions when first followed, and its allowed-token
/// mask when first asked for, by walking the vocabulary trie from it and skipping every subtree
/// whose prefix leads nowhere. Everything is cached, so after warm-up a mask is one copy.
/// Thread-safe: the cache is shared by every sequence (and engine) using the same constraint.
/// </summary>
/// <remarks>
/// Memory: the DFA counts what it keeps (<see cref="Bytes"/>, approximately) and tells its owner
/// how much it grew through a <see cref="DfaGrowth"/> callback, always outside its own lock, so
/// the owner may drop masks and rows of this and other DFAs (<see cref="Drop"/>) without two DFA
/// locks ever being held in opposite orders. Reading a cached mask or row stays lock-free.
/// </remarks>
public sealed class LazyDfa
{
    /// <summary>The most DFA states one constraint may create; past it, compilation of new states fails.</summary>
    public const int MaxDfaStates = 200_000;

    public const int Dead = 0;

    // Approximate sizes on a 64-bit runtime: an array is a 24-byte header plus its elements; a state
    // also costs its set's dictionary entry and its slots in the per-state tables below.
    private const int ArrayHeader = 24;
    private const int PerStateOverhead = 64;

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
    private readonly DfaGrowth? _grew;
    private long _bytes;      // what this DFA keeps now, under _gate
    private long _unreported; // growth not yet told to _grew, under _gate
    private int _dropCursor;  // where the next partial drop starts, so repeated drops go round the states
    private int _epoch;       // Forget calls so far: a report taken before one is stale

    public int Start { get; }
    public int MaskWords { get; }
    public int StateCount { get { lock (_gate) return _sets.Count; } }

    /// <summary>The approximate bytes this DFA keeps: its NFA, states, transition rows and cached masks.</summary>
    public long Bytes { get { lock (_gate) return _bytes; } }

    /// <summary>How many times <see cref="Forget"/> was called; reports carry the epoch they were taken in.</summary>
    public int Epoch => Volatile.Read(ref _epoch);

    /// <summary>The approximate bytes of one cached mask.</summary>
    public long MaskBytes => ArrayHeader + 4L * MaskWords;

    private long RowBytes => ArrayHeader + 4L * _classes;

    /// <param name="grew">Told of every growth (see <see cref="DfaGrowth"/>); null: unbounded, nothing is ever dropped.</param>
    private readonly int _maxStates;

    public LazyDfa(ByteNfa nfa, TokenVocabulary vocab, DfaGrowth? grew = null, int maxStates = MaxDfaStates)
    {
        _maxStates = maxStates;
        _nfa = nfa;
        _vocab = vocab;
        _grew = grew;
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
            Charge(nfa.ApproximateBytes); // reported with the first growth after construction
            Intern([]); // state 0: dead
            Start = Intern(Closure([nfa.Start]));
        }
    }

    public bool IsAccepting(int state) { lock (_gate) return _accept[state]; }

    /// <summary>Whether nothing but the end may follow: accepting, and no byte leads on.</summary>
    public bool IsFinal(int state)
    {
        bool final;
        long grew;
        int epoch;
        lock (_gate) { RowLocked(state); final = _final[state]; grew = TakeUnreported(out epoch); }
        Report(grew, -1, epoch);
        return final;
    }

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
        long grew;
        int epoch;
        lock (_gate)
        {
            m = _masks[state];
            if (m is null)
            {
                m = ComputeMask(state);
                Volatile.Write(ref _masks[state], m);
                Charge(MaskBytes);
            }
            grew = TakeUnreported(out epoch);
        }
        Report(grew, state, epoch);
        return m;
    }

    /// <summary>
    /// Forgets cached masks (all but <paramref name="keep"/>'s), then transition rows, until
    /// <paramref name="need"/> bytes are freed or nothing more can go; returns the bytes freed.
    /// Safe while sequences walk this DFA: what is dropped is computed again when next asked for
    /// (from the same state sets, so to the same values), and a reader already holding a mask or row
    /// keeps a valid one, as cached arrays are never written after they are published. Takes this
    /// DFA's lock: the caller must not hold any other DFA's.
    /// </summary>
    public long Drop(long need, int keep = -1)
    {
        lock (_gate) return DropLocked(need, keep);
    }

    /// <summary>
    /// Drops every mask and row and starts a new <see cref="Epoch"/>: the owner stops charging for
    /// what this DFA keeps, and growth taken before but reported after (a stale epoch) is to be
    /// ignored, as what it counted is dropped now or no longer charged.
    /// </summary>
    public void Forget()
    {
        lock (_gate)
        {
            DropLocked(long.MaxValue, -1);
            _unreported = 0;
            _epoch++;
        }
    }

    private long DropLocked(long need, int keep)
    {
        long freed = 0;
        int n = _sets.Count, s = _dropCursor % n;
        for (int i = 0; i < n && freed < need; i++, s = (s + 1) % n)
            if (s != keep && _masks[s] is not null) { Volatile.Write(ref _masks[s], null); freed += MaskBytes; }
        _dropCursor = s;
        // Rows last: every step walks them, and they are small next to a mask.
        for (int i = 0; i < n && freed < need; i++)
            if (_rows[i] is not null) { Volatile.Write(ref _rows[i], null); freed += RowBytes; }
        _bytes -= freed;
        return freed;
    }

    private void Charge(long bytes) { _bytes += bytes; _unreported += bytes; }

    private long TakeUnreported(out int epoch) { long d = _unreported; _unreported = 0; epoch = _epoch; return d; }

    // Outside the lock: the owner may drop masks of this DFA and of others in response.
    private void Report(long grew, int keep, int epoch) { if (grew != 0) _grew?.Invoke(this, grew, keep, epoch); }

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
        long grew;
        int epoch;
        lock (_gate) { r = RowLocked(state); grew = TakeUnreported(out epoch); }
        Report(grew, -1, epoch);
        return r;
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
        Charge(RowBytes);
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
        if (_sets.Count >= _maxStates)
            throw new StructuredOutputException($"the constraint needs more than {_maxStates} automaton states");
        id = _sets.Count;
        _sets.Add(set);
        _accept.Add(Array.BinarySearch(set, _nfa.Accept) >= 0);
        _ids[set] = id;
        Charge(ArrayHeader + 4L * set.Length + PerStateOverhead);
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

/// <summary>
/// Told that <paramref name="dfa"/> now keeps <paramref name="bytes"/> more; <paramref name="keep"/> is
/// the state whose mask is being handed out (-1: none), which a drop in response should spare;
/// <paramref name="epoch"/> is the DFA's <see cref="LazyDfa.Epoch"/> when the growth was taken.
/// Called outside the DFA's lock.
/// </summary>
public delegate void DfaGrowth(LazyDfa dfa, long bytes, int keep, int epoch);
