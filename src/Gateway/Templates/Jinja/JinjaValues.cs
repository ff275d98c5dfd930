using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Loom.Gateway.Templates;

// Runtime values are plain CLR objects so templates read naturally in the interpreter:
// null = None, bool, long, double, string, List<object?> (lists and tuples), JinjaDict,
// JinjaNamespace, JinjaCallable, and JinjaUndefined for missing names/keys.

/// <summary>Jinja's default Undefined: prints empty, is falsy, iterates as empty; attribute access
/// yields another Undefined (lenient, so `message.x.y` on a missing x does not fail a request).</summary>
internal sealed class JinjaUndefined
{
    public static readonly JinjaUndefined Instance = new();

    private JinjaUndefined()
    {
    }
}

/// <summary>namespace(): the one mutable object templates can assign attributes on from inside loops.</summary>
internal sealed class JinjaNamespace
{
    public JinjaDict Attributes { get; } = new();
}

/// <summary>Globals, macros and bound methods. Builtins see Markup arguments as plain strings;
/// macros (<paramref name="takesMarkup"/>) get them as they are, as Python passes objects through.</summary>
internal sealed class JinjaCallable(string name, Func<List<object?>, JinjaDict, object?> invoke, bool takesMarkup = false)
{
    public string Name { get; } = name;

    public object? Invoke(List<object?> args, JinjaDict kwargs)
    {
        if (!takesMarkup)
        {
            JinjaMarkup.Unwrap(args, kwargs);
        }
        return invoke(args, kwargs);
    }
}

internal static class JinjaValues
{
    public static bool IsUndefined(object? v) => v is JinjaUndefined;

    public static bool IsTruthy(object? v) => v switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        JinjaMarkup m => m.Value.Length > 0,
        ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>str(v) as Python prints it; Undefined prints empty.</summary>
    public static string ToStr(object? v) => v switch
    {
        JinjaUndefined => "",
        string s => s,
        JinjaMarkup m => m.Value,
        _ => Repr(v),
    };

    /// <summary>repr(v) as Python writes it (used for values inside printed lists and dicts).</summary>
    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, v);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? v)
    {
        switch (v)
        {
            case null: sb.Append("None"); break;
            case JinjaUndefined: break;
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FormatFloat(d)); break;
            case string s: AppendStringRepr(sb, s); break;
            case JinjaMarkup m: sb.Append("Markup("); AppendStringRepr(sb, m.Value); sb.Append(')'); break;
            case List<object?> list:
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(", ");
                    }
                    AppendRepr(sb, list[i]);
                }
                sb.Append(']');
                break;
            case JinjaDict dict:
                sb.Append('{');
                bool first = true;
                foreach (var kv in dict)
                {
                    if (!first)
                    {
                        sb.Append(", ");
                    }
                    first = false;
                    AppendRepr(sb, kv.Key);
                    sb.Append(": ");
                    AppendRepr(sb, kv.Value);
                }
                sb.Append('}');
                break;
            case JinjaNamespace ns: sb.Append("<Namespace ").Append(Repr(ns.Attributes)).Append('>'); break;
            case JinjaCallable c: sb.Append("<function ").Append(c.Name).Append('>'); break;
            default: sb.Append(v); break;
        }
    }

    private static void AppendStringRepr(StringBuilder sb, string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        sb.Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote)
                    {
                        sb.Append('\\').Append(c);
                    }
                    else if (c < 0x20 || c == 0x7f)
                    {
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        sb.Append(quote);
    }

    /// <summary>Python's float repr: the shortest digits that round-trip, written positionally when
    /// the leading digit's exponent is in [-4, 16) (always with a fraction, "2.0") and as d.ddde±XX
    /// otherwise. .NET's "R" gives the same digits but switches notation at other points.</summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }
        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }
        string sign = double.IsNegative(d) ? "-" : "";
        if (d == 0)
        {
            return sign + "0.0";
        }
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOf('E', StringComparison.Ordinal);
        int exp10 = e < 0 ? 0 : int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        string mantissa = e < 0 ? r : r[..e];
        int dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        string fraction = dot < 0 ? "" : mantissa[(dot + 1)..];
        // value = digits × 10^scale, digits without leading or trailing zeros
        string digits = (dot < 0 ? mantissa : mantissa[..dot]) + fraction;
        int scale = exp10 - fraction.Length;
        digits = digits.TrimStart('0');
        int trimmed = digits.Length;
        digits = digits.TrimEnd('0');
        scale += trimmed - digits.Length;
        int lead = digits.Length - 1 + scale; // exponent of the leading digit
        if (lead is < -4 or >= 16)
        {
            string m = digits.Length == 1 ? digits : digits[..1] + "." + digits[1..];
            return $"{sign}{m}e{(lead < 0 ? '-' : '+')}{Math.Abs(lead):00}";
        }
        if (lead < 0)
        {
            return sign + "0." + new string('0', -lead - 1) + digits;
        }
        return digits.Length <= lead + 1
            ? sign + digits + new string('0', lead + 1 - digits.Length) + ".0"
            : sign + digits[..(lead + 1)] + "." + digits[(lead + 1)..];
    }

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        JinjaUndefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        JinjaDict => "dict",
        JinjaNamespace => "Namespace",
        JinjaCallable => "function",
        JinjaMarkup => "Markup",
        _ => v.GetType().Name,
    };

    public static bool IsNumber(object? v) => v is long or double;

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new JinjaException($"Expected a number, got {TypeName(v)}"),
    };

    /// <summary>Python ==: numbers compare by value (1 == 1.0 == True), containers deeply.</summary>
    public static bool AreEqual(object? a, object? b)
    {
        (a, b) = (JinjaMarkup.Plain(a), JinjaMarkup.Plain(b));
        if (a is long or double or bool && b is long or double or bool)
        {
            return ToDouble(a) == ToDouble(b);
        }
        return (a, b) switch
        {
            (null, null) => true,
            (JinjaUndefined, JinjaUndefined) => true,
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => AreEqual(p.First, p.Second)),
            (JinjaDict x, JinjaDict y) => x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var o) && AreEqual(kv.Value, o)),
            _ => ReferenceEquals(a, b),
        };
    }

    /// <summary>Python orders str by code point. Ordinal UTF-16 order puts surrogate pairs (past the
    /// BMP) before U+E000..U+FFFF; shifting those two ranges restores code point order.</summary>
    public static readonly IComparer<string> CodePointComparer = Comparer<string>.Create((x, y) =>
    {
        int n = Math.Min(x.Length, y.Length);
        for (int i = 0; i < n; i++)
        {
            if (x[i] != y[i])
            {
                return CodePointKey(x[i]).CompareTo(CodePointKey(y[i]));
            }
        }
        return x.Length.CompareTo(y.Length);
    });

    private static int CodePointKey(char c) => c >= 0xE000 ? c - 0x800 : char.IsSurrogate(c) ? c + 0x2000 : c;

    /// <summary>A stable sort by <paramref name="compare"/>. .NET's sort wraps an exception from the
    /// comparison (Python's TypeError for 1 &lt; 'a') in InvalidOperationException; this unwraps it so
    /// the template error reaches the caller as one.</summary>
    public static List<T> Sort<T>(IEnumerable<T> items, Func<T, T, int> compare)
    {
        try
        {
            return items.Order(Comparer<T>.Create((a, b) => compare(a, b))).ToList();
        }
        catch (InvalidOperationException e) when (e.InnerException is JinjaException inner)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inner);
            throw;
        }
    }

    public static int Compare(object? a, object? b)
    {
        (a, b) = (JinjaMarkup.Plain(a), JinjaMarkup.Plain(b));
        if (a is long or double or bool && b is long or double or bool)
        {
            return ToDouble(a).CompareTo(ToDouble(b));
        }
        if (a is string x && b is string y)
        {
            return CodePointComparer.Compare(x, y);
        }
        if (a is List<object?> la && b is List<object?> lb)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                int c = Compare(la[i], lb[i]);
                if (c != 0)
                {
                    return c;
                }
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw new JinjaException($"'<' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    /// <summary>Iterates like Python: lists, dict keys, string characters; Undefined is empty.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        List<object?> l => l,
        JinjaDict d => d.Keys.Cast<object?>().ToList(),
        string s => EnumerateChars(s),
        JinjaMarkup m => EnumerateChars(m.Value),
        JinjaUndefined => [],
        _ => throw new JinjaException($"'{TypeName(v)}' object is not iterable"),
    };

    private static List<object?> EnumerateChars(string s) => [.. StringInfoHelper.CodePoints(s)];

    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => FromJsonObject(e),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out long l) && !e.GetRawText().AsSpan().ContainsAny(".eE") ? (object)l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    private static JinjaDict FromJsonObject(JsonElement e)
    {
        var d = new JinjaDict();
        foreach (var p in e.EnumerateObject())
        {
            d[p.Name] = FromJson(p.Value);
        }
        return d;
    }

    /// <summary>Converts caller-supplied CLR values (extra template kwargs) to runtime values.</summary>
    public static object? FromClr(object? v) => v switch
    {
        null or bool or long or double or string or JinjaDict or JinjaUndefined => v,
        int i => (long)i,
        short or byte or uint => Convert.ToInt64(v, CultureInfo.InvariantCulture),
        float f => (double)f,
        decimal m => (double)m,
        JsonElement je => FromJson(je),
        JsonDocument doc => FromJson(doc.RootElement),
        IDictionary dict => ToDict(dict),
        IEnumerable seq => seq.Cast<object?>().Select(FromClr).ToList(),
        _ => v.ToString(),
    };

    private static JinjaDict ToDict(IDictionary dict)
    {
        var d = new JinjaDict();
        foreach (DictionaryEntry kv in dict)
        {
            d[Convert.ToString(kv.Key, CultureInfo.InvariantCulture) ?? ""] = FromClr(kv.Value);
        }
        return d;
    }
}

/// <summary>Python counts, indexes, slices and iterates str by code point, .NET by UTF-16 unit:
/// the two differ past the BMP (emoji), where a surrogate pair must stay one character.</summary>
internal static class StringInfoHelper
{
    public static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>The code points of <paramref name="s"/>; a lone surrogate stays itself, as in Python.</summary>
    public static List<string> CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                list.Add(s.Substring(i++, 2));
            }
            else
            {
                list.Add(s[i].ToString());
            }
        }
        return list;
    }

    public static int Length(string s) => HasSurrogates(s) ? CodePoints(s).Count : s.Length;
}
