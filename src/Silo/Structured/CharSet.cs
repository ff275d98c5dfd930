namespace Loom.Silo.Structured;

/// <summary>
/// A set of Unicode scalar values as sorted, disjoint, non-adjacent inclusive ranges. Surrogates
/// (U+D800–U+DFFF) are never members: the automata run over UTF-8, which cannot encode them.
/// </summary>
public sealed class CharSet
{
    public const int MaxCodePoint = 0x10FFFF;
    private readonly List<(int Lo, int Hi)> _ranges = [];

    public IReadOnlyList<(int Lo, int Hi)> Ranges => _ranges;

    public bool IsEmpty => _ranges.Count == 0;

    public static CharSet Of(params (int Lo, int Hi)[] ranges)
    {
        var s = new CharSet();
        foreach (var (lo, hi) in ranges) s.Add(lo, hi);
        return s;
    }

    public static CharSet Single(int c) => Of((c, c));

    /// <summary>Every scalar value but those in <paramref name="except"/>.</summary>
    public static CharSet AllBut(params int[] except)
    {
        var s = new CharSet();
        foreach (int c in except) s.Add(c, c);
        return s.Complement();
    }

    public CharSet Add(int lo, int hi)
    {
        if (lo > hi) return this;
        lo = Math.Max(0, lo);
        hi = Math.Min(MaxCodePoint, hi);
        // Cut out the surrogates.
        if (lo <= 0xDFFF && hi >= 0xD800)
        {
            if (lo < 0xD800) Insert(lo, 0xD7FF);
            if (hi > 0xDFFF) Insert(0xE000, hi);
            return this;
        }
        Insert(lo, hi);
        return this;
    }

    public CharSet AddAll(CharSet other)
    {
        foreach (var (lo, hi) in other._ranges) Insert(lo, hi);
        return this;
    }

    private void Insert(int lo, int hi)
    {
        if (lo > hi) return;
        var merged = new List<(int, int)>(_ranges.Count + 1);
        bool placed = false;
        foreach (var (a, b) in _ranges)
        {
            if (b + 1 < lo) merged.Add((a, b));
            else if (hi + 1 < a)
            {
                if (!placed) { merged.Add((lo, hi)); placed = true; }
                merged.Add((a, b));
            }
            else { lo = Math.Min(lo, a); hi = Math.Max(hi, b); }
        }
        if (!placed) merged.Add((lo, hi));
        merged.Sort();
        _ranges.Clear();
        _ranges.AddRange(merged);
    }

    /// <summary>The scalar values not in this set.</summary>
    public CharSet Complement()
    {
        var c = new CharSet();
        int next = 0;
        foreach (var (lo, hi) in _ranges)
        {
            if (lo > next) c.Add(next, lo - 1);
            next = hi + 1;
        }
        if (next <= MaxCodePoint) c.Add(next, MaxCodePoint);
        return c;
    }

    public CharSet Except(CharSet other) => Complement().AddAll(other).Complement();

    public bool Contains(int c)
    {
        foreach (var (lo, hi) in _ranges) if (c >= lo && c <= hi) return true;
        return false;
    }

    /// <summary>
    /// The set as UTF-8: a list of byte-range sequences, each matching the encodings of a contiguous
    /// block of scalar values (the split of Russ Cox's / Rust's utf8-ranges).
    /// </summary>
    public List<(byte Lo, byte Hi)[]> Utf8Sequences()
    {
        var outList = new List<(byte, byte)[]>();
        foreach (var (lo, hi) in _ranges) Split(lo, hi, outList);
        return outList;
    }

    private static void Split(int lo, int hi, List<(byte, byte)[]> outList)
    {
        if (lo > hi) return;
        foreach (int boundary in (ReadOnlySpan<int>)[0x7F, 0x7FF, 0xFFFF])
            if (lo <= boundary && hi > boundary)
            {
                Split(lo, boundary, outList);
                Split(boundary + 1, hi, outList);
                return;
            }
        if (hi <= 0x7F)
        {
            outList.Add([((byte)lo, (byte)hi)]);
            return;
        }
        for (int i = 1; i < 4; i++)
        {
            int m = (1 << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m))
            {
                if ((lo & m) != 0)
                {
                    Split(lo, lo | m, outList);
                    Split((lo | m) + 1, hi, outList);
                    return;
                }
                if ((hi & m) != m)
                {
                    Split(lo, (hi & ~m) - 1, outList);
                    Split(hi & ~m, hi, outList);
                    return;
                }
            }
        }
        byte[] a = Encode(lo), b = Encode(hi);
        var seq = new (byte, byte)[a.Length];
        for (int k = 0; k < a.Length; k++) seq[k] = (a[k], b[k]);
        outList.Add(seq);
    }

    private static byte[] Encode(int c) => System.Text.Encoding.UTF8.GetBytes(char.ConvertFromUtf32(c));
}
