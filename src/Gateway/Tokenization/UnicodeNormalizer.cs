using System.Globalization;
using System.Text;

namespace Loom.Gateway.Tokenization;

/// <summary>Canonical Unicode normalization (NFC, NFD) for tokenizer normalizers (Qwen's is NFC).
/// Written by hand because the repo builds with InvariantGlobalization, where string.Normalize
/// leaves non-ASCII text unchanged, and the managed alternative (ICU4N) is an alpha package that
/// pulls ~20 MB of data. Tables come from UnicodeNormalizationData (Unicode 14; characters that
/// later versions gave decompositions normalize as unchanged, the only known gap).</summary>
public static class UnicodeNormalizer
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Dictionary<int, int[]> Decomposition = new();
    private static readonly Dictionary<int, byte> Ccc = new();
    private static readonly Dictionary<long, int> Composition = new();
    // Code points that can change under NFC: anything decomposable, non-starters, and second
    // halves of compositions. Text without any of them (most text) is returned as is.
    private static readonly HashSet<int> MayChange = [];

    static UnicodeNormalizer()
    {
        var excluded = new HashSet<int>();
        foreach (string e in Entries(UnicodeNormalizationData.CompositionExclusions))
        {
            excluded.Add(Hex(e));
        }
        foreach (string e in Entries(UnicodeNormalizationData.Decompositions))
        {
            int eq = e.IndexOf('=');
            int cp = Hex(e[..eq]);
            int[] parts = e[(eq + 1)..].Split(',').Select(Hex).ToArray();
            Decomposition[cp] = parts;
            MayChange.Add(cp);
            if (parts.Length == 2 && !excluded.Contains(cp))
            {
                Composition[Key(parts[0], parts[1])] = cp;
                MayChange.Add(parts[1]);
            }
        }
        foreach (string e in Entries(UnicodeNormalizationData.CombiningClasses))
        {
            int colon = e.IndexOf(':');
            byte cls = byte.Parse(e.AsSpan(colon + 1), CultureInfo.InvariantCulture);
            string range = e[..colon];
            int dash = range.IndexOf('-');
            int lo = Hex(dash < 0 ? range : range[..dash]);
            int hi = dash < 0 ? lo : Hex(range[(dash + 1)..]);
            for (int cp = lo; cp <= hi; cp++)
            {
                Ccc[cp] = cls;
                MayChange.Add(cp);
            }
        }
        // Hangul: jamo V and T compose with a preceding L or LV syllable.
        for (int cp = VBase; cp < VBase + VCount; cp++)
        {
            MayChange.Add(cp);
        }
        for (int cp = TBase + 1; cp < TBase + TCount; cp++)
        {
            MayChange.Add(cp);
        }
    }

    public static string Nfc(string s) => NeedsWork(s) ? Compose(Decompose(s)) : s;

    public static string Nfd(string s) => NeedsWork(s) || HasHangulSyllable(s) ? ToString(Decompose(s)) : s;

    private static bool NeedsWork(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c < 0x300)
            {
                continue; // nothing below U+0300 decomposes, combines or is a non-starter
            }
            int cp = c;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                cp = char.ConvertToUtf32(c, s[++i]);
            }
            if (MayChange.Contains(cp))
            {
                return true;
            }
        }
        return false;
    }

    private static bool HasHangulSyllable(string s)
    {
        foreach (char c in s)
        {
            if (c is >= (char)SBase and < (char)(SBase + SCount))
            {
                return true;
            }
        }
        return false;
    }

    private static List<int> Decompose(string s)
    {
        var cps = new List<int>(s.Length + 8);
        for (int i = 0; i < s.Length; i++)
        {
            int cp = s[i];
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                cp = char.ConvertToUtf32(s[i], s[++i]);
            }
            DecomposeOne(cp, cps);
        }
        // Canonical ordering: stable sort each run of non-starters by combining class.
        for (int i = 0; i < cps.Count; i++)
        {
            if (CombiningClass(cps[i]) == 0)
            {
                continue;
            }
            int end = i;
            while (end < cps.Count && CombiningClass(cps[end]) != 0)
            {
                end++;
            }
            if (end - i > 1)
            {
                var run = cps.GetRange(i, end - i).OrderBy(CombiningClass).ToList(); // OrderBy is stable
                for (int k = 0; k < run.Count; k++)
                {
                    cps[i + k] = run[k];
                }
            }
            i = end;
        }
        return cps;
    }

    private static void DecomposeOne(int cp, List<int> output)
    {
        if (cp is >= SBase and < SBase + SCount)
        {
            int index = cp - SBase;
            output.Add(LBase + index / NCount);
            output.Add(VBase + index % NCount / TCount);
            if (index % TCount != 0)
            {
                output.Add(TBase + index % TCount);
            }
            return;
        }
        if (Decomposition.TryGetValue(cp, out var parts))
        {
            foreach (int p in parts)
            {
                DecomposeOne(p, output);
            }
            return;
        }
        output.Add(cp);
    }

    // The canonical composition algorithm (UAX #15): a character joins the last starter unless a
    // character in between is a starter or has a combining class >= its own ("blocked").
    private static string Compose(List<int> cps)
    {
        var result = new List<int>(cps.Count);
        int starter = -1;
        int lastCcc = -1; // class of the last character kept after the starter; -1: none
        foreach (int cp in cps)
        {
            int ccc = CombiningClass(cp);
            if (starter >= 0 && (lastCcc == -1 || (lastCcc != 0 && lastCcc < ccc))
                && TryCompose(result[starter], cp, out int composed))
            {
                result[starter] = composed;
                continue;
            }
            if (ccc == 0)
            {
                starter = result.Count;
                lastCcc = -1;
            }
            else
            {
                lastCcc = ccc;
            }
            result.Add(cp);
        }
        return ToString(result);
    }

    private static bool TryCompose(int a, int b, out int composed)
    {
        if (a is >= LBase and < LBase + LCount && b is >= VBase and < VBase + VCount)
        {
            composed = SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
            return true;
        }
        if (a is >= SBase and < SBase + SCount && (a - SBase) % TCount == 0 && b is > TBase and < TBase + TCount)
        {
            composed = a + (b - TBase);
            return true;
        }
        return Composition.TryGetValue(Key(a, b), out composed);
    }

    private static int CombiningClass(int cp) => Ccc.TryGetValue(cp, out byte c) ? c : 0;

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    private static string ToString(List<int> cps)
    {
        var sb = new StringBuilder(cps.Count);
        foreach (int cp in cps)
        {
            if (cp is >= 0xD800 and <= 0xDFFF)
            {
                sb.Append((char)cp); // a lone surrogate from the input stays as it was
            }
            else
            {
                sb.Append(char.ConvertFromUtf32(cp));
            }
        }
        return sb.ToString();
    }

    private static IEnumerable<string> Entries(string data) =>
        data.Split([' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries);

    private static int Hex(string s) => int.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
