using System.Globalization;
using System.Text;
using Loom.Silo.Structured;

namespace Loom.Gateway.Structured;

/// <summary>
/// A <see cref="Grammar"/> written back as GBNF (what <see cref="GbnfParser"/> reads), its rules
/// renamed under a prefix, so several compiled schemas (one per tool) and literal text compose into
/// one grammar that the worker compiles. Shared sub-patterns become rules of their own, which keeps
/// objects with many optional properties linear in size.
/// </summary>
public sealed class GbnfWriter
{
    private readonly StringBuilder _out = new();
    private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<Pattern, string> _shared = new(ReferenceEqualityComparer.Instance);
    private readonly Queue<(string Name, Pattern Body)> _pending = new();
    private int _counter;

    public string Text => _out.ToString();

    /// <summary>Adds <paramref name="grammar"/>'s rules under <paramref name="prefix"/>; returns the GBNF name of its root rule.</summary>
    public string Add(Grammar grammar, string prefix)
    {
        foreach (var name in grammar.Rules.Keys) _names[prefix + "\u0000" + name] = $"{prefix}-r{_counter++}";
        foreach (var (name, body) in grammar.Rules) _pending.Enqueue((_names[prefix + "\u0000" + name], Rename(body, prefix)));
        Flush();
        return _names[prefix + "\u0000" + grammar.Root];
    }

    /// <summary>Adds one rule written as a pattern (it may reference rules added before by their GBNF names).</summary>
    public void Rule(string name, Pattern body)
    {
        _pending.Enqueue((name, body));
        Flush();
    }

    private void Flush()
    {
        while (_pending.TryDequeue(out var r)) _out.Append(r.Name).Append(" ::= ").Append(Write(r.Body)).Append('\n');
    }

    private Pattern Rename(Pattern p, string prefix) => p switch
    {
        RuleRef r => new RuleRef(_names.TryGetValue(prefix + "\u0000" + r.Name, out var n) ? n : throw new StructuredOutputException($"rule '{r.Name}' is not defined")),
        Seq s => new Seq([.. s.Items.Select(x => Rename(x, prefix))]),
        Alt a => new Alt([.. a.Items.Select(x => Rename(x, prefix))]),
        Repeat r => new Repeat(Rename(r.Item, prefix), r.Min, r.Max),
        Shared sh => SharedRenamed(sh, prefix),
        _ => p,
    };

    private readonly Dictionary<Pattern, Shared> _renamedShared = new(ReferenceEqualityComparer.Instance);

    private Shared SharedRenamed(Shared sh, string prefix)
    {
        if (_renamedShared.TryGetValue(sh, out var done)) return done;
        var r = new Shared(Rename(sh.Item, prefix));
        _renamedShared[sh] = r;
        return r;
    }

    private string Write(Pattern p)
    {
        switch (p)
        {
            case Lit lit: return Quote(Encoding.UTF8.GetString(lit.Bytes));
            case Chars c: return Class(c.Set);
            case Seq s: return s.Items.Length == 0 ? "\"\"" : "(" + string.Join(" ", s.Items.Select(Write)) + ")";
            case Alt a: return a.Items.Length == 0 ? Class(new CharSet()) : "(" + string.Join(" | ", a.Items.Select(Write)) + ")";
            case Repeat r:
                string item = Write(r.Item);
                return r.Max < 0 ? $"{item}{{{r.Min},}}" : $"{item}{{{r.Min},{r.Max}}}";
            case RuleRef rr: return rr.Name;
            case Shared sh:
                if (!_shared.TryGetValue(sh, out var name))
                {
                    name = $"s{_counter++}";
                    _shared[sh] = name;
                    _pending.Enqueue((name, sh.Item));
                }
                return name;
            default: throw new ArgumentException(p.GetType().Name);
        }
    }

    private static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var rune in s.EnumerateRunes()) sb.Append(Escape(rune.Value, inClass: false));
        return sb.Append('"').ToString();
    }

    private static string Class(CharSet set)
    {
        // An empty set matches nothing: the complement of everything.
        if (set.IsEmpty) return "[^\\x00-\\U0010FFFF]";
        var sb = new StringBuilder("[");
        foreach (var (lo, hi) in set.Ranges)
        {
            sb.Append(Escape(lo, inClass: true));
            if (hi > lo) sb.Append('-').Append(Escape(hi, inClass: true));
        }
        return sb.Append(']').ToString();
    }

    private static string Escape(int c, bool inClass) => c switch
    {
        '"' when !inClass => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        ']' or '^' or '-' or '[' when inClass => "\\" + (char)c,
        < 0x20 or 0x7F => "\\x" + c.ToString("X2", CultureInfo.InvariantCulture),
        > 0xFFFF => "\\U" + c.ToString("X8", CultureInfo.InvariantCulture),
        _ when c >= 0xD800 && c <= 0xDFFF => "\\u" + c.ToString("X4", CultureInfo.InvariantCulture),
        _ => char.ConvertFromUtf32(c),
    };
}
