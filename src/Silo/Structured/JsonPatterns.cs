using System.Globalization;

namespace Loom.Silo.Structured;

/// <summary>
/// The JSON pieces every schema is built from, and the whitespace policy: output is compact JSON,
/// with at most one space after ':' and after ',' (as Python's json.dumps writes it) and no other
/// whitespace; no newlines, no indentation.
/// </summary>
public static class JsonPatterns
{
    /// <summary>The widest integers generated: 15 digits keeps every value exact in a double.</summary>
    public const long IntegerBound = 999_999_999_999_999;

    public static Pattern Comma { get; } = Pattern.Sequence(Pattern.Text(","), Pattern.Optional(Pattern.Text(" ")));
    public static Pattern Colon { get; } = Pattern.Sequence(Pattern.Text(":"), Pattern.Optional(Pattern.Text(" ")));

    private static readonly Pattern Hex = Pattern.Class(CharSet.Of(('0', '9'), ('a', 'f'), ('A', 'F')));
    private static readonly Pattern Digit = Pattern.Class(CharSet.Of(('0', '9')));

    /// <summary>A character of a JSON string as written: unescaped (no '"', '\\' or control), or an escape (\u of a non-surrogate).</summary>
    public static Pattern StringChar { get; } = Pattern.Either(
        Pattern.Class(CharSet.AllBut('"', '\\').Except(CharSet.Of((0, 0x1F)))),
        Pattern.Sequence(Pattern.Text("\\"), Pattern.Either(
            Pattern.Class(CharSet.Of(('"', '"'), ('\\', '\\'), ('/', '/'), ('b', 'b'), ('f', 'f'), ('n', 'n'), ('r', 'r'), ('t', 't'))),
            Pattern.Sequence(Pattern.Text("u"), Pattern.Either(
                Pattern.Sequence(Pattern.Class(CharSet.Of(('0', '9'), ('a', 'c'), ('A', 'C'), ('e', 'f'), ('E', 'F'))), Hex, Hex, Hex),
                Pattern.Sequence(Pattern.Class(CharSet.Of(('d', 'd'), ('D', 'D'))), Pattern.Class(CharSet.Of(('0', '7'))), Hex, Hex))))));

    public static Pattern String(int minLength, int maxLength) =>
        Pattern.Sequence(Pattern.Text("\""), new Repeat(StringChar, minLength, maxLength), Pattern.Text("\""));

    public static Pattern Integer { get; } = IntegerRange(-IntegerBound, IntegerBound);

    public static Pattern Number { get; } = Pattern.Sequence(
        Pattern.Optional(Pattern.Text("-")),
        Pattern.Either(Pattern.Text("0"), Pattern.Sequence(Pattern.Class(CharSet.Of(('1', '9'))), new Repeat(Digit, 0, 14))),
        Pattern.Optional(Pattern.Sequence(Pattern.Text("."), new Repeat(Digit, 1, 15))),
        Pattern.Optional(Pattern.Sequence(Pattern.Class(CharSet.Of(('e', 'e'), ('E', 'E'))), Pattern.Optional(Pattern.Class(CharSet.Of(('+', '+'), ('-', '-')))),
            new Repeat(Digit, 1, 2))));

    public static Pattern Boolean { get; } = Pattern.Either(Pattern.Text("true"), Pattern.Text("false"));
    public static Pattern Null { get; } = Pattern.Text("null");

    /// <summary>The integers in [lo, hi], written without leading zeros (and never as -0).</summary>
    public static Pattern IntegerRange(long lo, long hi)
    {
        if (lo > hi) return Pattern.Nothing;
        var alts = new List<Pattern>();
        if (lo < 0) alts.Add(Pattern.Sequence(Pattern.Text("-"), NaturalRange(Math.Max(1, -Math.Min(hi, -1)), -lo)));
        if (hi >= 0) alts.Add(NaturalRange(Math.Max(lo, 0), hi));
        return Pattern.Either([.. alts]);
    }

    private static Pattern NaturalRange(long lo, long hi)
    {
        var alts = new List<Pattern>();
        for (int len = Digits(lo); len <= Digits(hi); len++)
        {
            long first = len == 1 ? 0 : Pow10(len - 1), last = Pow10(len) - 1;
            long a = Math.Max(lo, first), b = Math.Min(hi, last);
            if (a <= b) alts.Add(SameLength(a.ToString(CultureInfo.InvariantCulture), b.ToString(CultureInfo.InvariantCulture)));
        }
        return Pattern.Either([.. alts]);
    }

    /// <summary>Digit strings of one length between x and y inclusive.</summary>
    private static Pattern SameLength(string x, string y)
    {
        if (x.Length == 0) return Pattern.Empty;
        if (x[0] == y[0]) return Pattern.Sequence(Pattern.Text(x[..1]), SameLength(x[1..], y[1..]));
        string rest0 = new('0', x.Length - 1), rest9 = new('9', x.Length - 1);
        if (x[1..] == rest0 && y[1..] == rest9)
            return Pattern.Sequence(Pattern.Class(CharSet.Of((x[0], y[0]))), new Repeat(Digit, x.Length - 1, x.Length - 1));
        var alts = new List<Pattern> { Pattern.Sequence(Pattern.Text(x[..1]), SameLength(x[1..], rest9)) };
        if (y[0] - x[0] > 1)
            alts.Add(Pattern.Sequence(Pattern.Class(CharSet.Of((x[0] + 1, y[0] - 1))), new Repeat(Digit, x.Length - 1, x.Length - 1)));
        alts.Add(Pattern.Sequence(Pattern.Text(y[..1]), SameLength(rest0, y[1..])));
        return Pattern.Either([.. alts]);
    }

    private static int Digits(long v) => v.ToString(CultureInfo.InvariantCulture).Length;
    private static long Pow10(int n) { long p = 1; for (int i = 0; i < n; i++) p *= 10; return p; }

    /// <summary>The string formats supported, as the content between the quotes; null for an unknown format.</summary>
    public static Pattern? Format(string format)
    {
        Pattern D(int n) => new Repeat(Digit, n, n);
        Pattern C(params (int, int)[] r) => Pattern.Class(CharSet.Of(r));
        Pattern T(string s) => Pattern.Text(s);
        // Days that exist in every year (29 February is left out: it needs the year).
        var monthDay = Pattern.Either(
            Pattern.Sequence(Pattern.Either(T("01"), T("03"), T("05"), T("07"), T("08"), T("10"), T("12")), T("-"),
                Pattern.Either(Pattern.Sequence(T("0"), C(('1', '9'))), Pattern.Sequence(C(('1', '2')), D(1)), Pattern.Sequence(T("3"), C(('0', '1'))))),
            Pattern.Sequence(Pattern.Either(T("04"), T("06"), T("09"), T("11")), T("-"),
                Pattern.Either(Pattern.Sequence(T("0"), C(('1', '9'))), Pattern.Sequence(C(('1', '2')), D(1)), T("30"))),
            Pattern.Sequence(T("02-"), Pattern.Either(Pattern.Sequence(T("0"), C(('1', '9'))), Pattern.Sequence(T("1"), D(1)), Pattern.Sequence(T("2"), C(('0', '8'))))));
        var date = Pattern.Sequence(Pattern.Either(T("19"), T("20")), D(2), T("-"), monthDay);
        var hour = Pattern.Either(Pattern.Sequence(C(('0', '1')), D(1)), Pattern.Sequence(T("2"), C(('0', '3'))));
        var sixty = Pattern.Sequence(C(('0', '5')), D(1));
        var time = Pattern.Sequence(hour, T(":"), sixty, T(":"), sixty, Pattern.Optional(Pattern.Sequence(T("."), new Repeat(Digit, 1, 6))),
            Pattern.Either(T("Z"), Pattern.Sequence(C(('+', '+'), ('-', '-')), hour, T(":"), sixty)));
        var hex = C(('0', '9'), ('a', 'f'));
        var label = new Repeat(C(('a', 'z'), ('0', '9')), 1, 20);
        return format switch
        {
            "date" => date,
            "time" => time,
            "date-time" => Pattern.Sequence(date, T("T"), time),
            "uuid" => Pattern.Sequence(new Repeat(hex, 8, 8), T("-"), new Repeat(hex, 4, 4), T("-"), new Repeat(hex, 4, 4), T("-"), new Repeat(hex, 4, 4), T("-"), new Repeat(hex, 12, 12)),
            "email" => Pattern.Sequence(label, new Repeat(Pattern.Sequence(T("."), label), 0, 2), T("@"), label,
                new Repeat(Pattern.Sequence(T("."), label), 0, 2), T("."), new Repeat(C(('a', 'z')), 2, 6)),
            _ => null,
        };
    }

    /// <summary>
    /// A pattern over string values made into one over their JSON encoding: characters that JSON
    /// must escape ('"', '\\', controls) are written as escapes.
    /// </summary>
    public static Pattern Escaped(Pattern p) => p switch
    {
        Lit lit => Pattern.Text(System.Text.Json.JsonSerializer.Serialize(System.Text.Encoding.UTF8.GetString(lit.Bytes), JsonText.Options)[1..^1]),
        Chars c => EscapedClass(c.Set),
        Seq s => new Seq([.. s.Items.Select(Escaped)]),
        Alt a => new Alt([.. a.Items.Select(Escaped)]),
        Repeat r => new Repeat(Escaped(r.Item), r.Min, r.Max),
        Shared sh => new Shared(Escaped(sh.Item)),
        _ => throw new StructuredOutputException("a rule reference cannot be escaped"),
    };

    private static Pattern EscapedClass(CharSet set)
    {
        var unsafeChars = CharSet.Of(('"', '"'), ('\\', '\\'), (0, 0x1F));
        var alts = new List<Pattern>();
        var safe = set.Except(unsafeChars);
        if (!safe.IsEmpty) alts.Add(Pattern.Class(safe));
        foreach (var (lo, hi) in unsafeChars.Ranges)
            for (int c = lo; c <= hi; c++)
                if (set.Contains(c)) alts.Add(Pattern.Text(System.Text.Json.JsonSerializer.Serialize(((char)c).ToString(), JsonText.Options)[1..^1]));
        return Pattern.Either([.. alts]);
    }
}

/// <summary>JSON text as the constraints write it: compact, non-ASCII kept as is.</summary>
public static class JsonText
{
    public static readonly System.Text.Json.JsonSerializerOptions Options = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Compact(System.Text.Json.JsonElement e)
    {
        using var ms = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(ms, new System.Text.Json.JsonWriterOptions { Encoder = Options.Encoder }))
            e.WriteTo(w);
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
