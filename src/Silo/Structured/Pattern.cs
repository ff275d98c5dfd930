using System.Text;

namespace Loom.Silo.Structured;

/// <summary>
/// The one intermediate form of every structured output (JSON schema, regex, choice, GBNF): a
/// regular expression over Unicode text, with references to named rules for recursion
/// (<see cref="Grammar"/>). <see cref="ByteNfa"/> compiles it to an automaton over UTF-8 bytes.
/// </summary>
public abstract record Pattern
{
    public static readonly Pattern Empty = new Seq([]);
    public static readonly Pattern Nothing = new Alt([]);

    public static Pattern Text(string s) => new Lit(Encoding.UTF8.GetBytes(s));
    public static Pattern Sequence(params Pattern[] items) => items.Length == 1 ? items[0] : new Seq(items);
    public static Pattern Either(params Pattern[] items) => items.Length == 1 ? items[0] : new Alt(items);
    public static Pattern Optional(Pattern p) => new Repeat(p, 0, 1);
    public static Pattern Class(CharSet set) => new Chars(set);
}

/// <summary>Exactly these bytes (UTF-8 text).</summary>
public sealed record Lit(byte[] Bytes) : Pattern;

/// <summary>One character from the set.</summary>
public sealed record Chars(CharSet Set) : Pattern;

public sealed record Seq(Pattern[] Items) : Pattern;

/// <summary>Any one of the items (no items: matches nothing).</summary>
public sealed record Alt(Pattern[] Items) : Pattern;

/// <summary>Item repeated Min to Max times; Max = -1 is unbounded.</summary>
public sealed record Repeat(Pattern Item, int Min, int Max) : Pattern;

/// <summary>The grammar's rule of this name (recursion is expanded to a bounded depth).</summary>
public sealed record RuleRef(string Name) : Pattern;

/// <summary>
/// A subpattern referenced from several places with the same continuation (an object's remaining
/// properties): compiled once per continuation, so optional properties stay linear in size.
/// </summary>
public sealed record Shared(Pattern Item) : Pattern;

/// <summary>Named rules and the root rule's name.</summary>
public sealed class Grammar(string root)
{
    public string Root { get; } = root;
    public Dictionary<string, Pattern> Rules { get; } = new(StringComparer.Ordinal);

    public static Grammar Of(Pattern root)
    {
        var g = new Grammar("root");
        g.Rules["root"] = root;
        return g;
    }
}
