using System.Text;

namespace Loom.Gateway.Templates;

/// <summary>Arithmetic, membership, attribute/item access and slicing, with Python semantics.</summary>
internal static class JinjaOperators
{
    public static object? Binary(string op, object? a, object? b)
    {
        if (op == "+" && (a is JinjaMarkup || b is JinjaMarkup) && a is not (List<object?> or JinjaUndefined) && b is not (List<object?> or JinjaUndefined))
        {
            return JinjaMarkup.Concat(a, b);
        }
        (a, b) = (JinjaMarkup.Plain(a), JinjaMarkup.Plain(b));
        switch (op)
        {
            case "==": return JinjaValues.AreEqual(a, b);
            case "!=": return !JinjaValues.AreEqual(a, b);
            case "<": return JinjaValues.Compare(a, b) < 0;
            case ">": return JinjaValues.Compare(a, b) > 0;
            case "<=": return JinjaValues.Compare(a, b) <= 0;
            case ">=": return JinjaValues.Compare(a, b) >= 0;
            case "in": return Contains(b, a);
            case "not in": return !Contains(b, a);
            case "~": return JinjaValues.ToStr(a) + JinjaValues.ToStr(b);
        }
        if (a is JinjaUndefined || b is JinjaUndefined)
        {
            throw new JinjaException($"Cannot apply '{op}' to an undefined value");
        }
        if (op == "+")
        {
            switch (a, b)
            {
                case (string x, string y): return x + y;
                case (List<object?> x, List<object?> y): return x.Concat(y).ToList();
                // @huggingface/jinja concatenates a string with any value; Python would raise.
                // Matching the lenient reference keeps templates that do `'n=' + 3` rendering.
                case (string x, _) when b is long or double or bool or null: return x + JinjaValues.ToStr(b);
                case (_, string y) when a is long or double or bool or null: return JinjaValues.ToStr(a) + y;
            }
        }
        if (op == "*" && (a is string or List<object?> ? b : a) is long or bool)
        {
            // Python repeats a sequence by an int on either side: 'ab' * 2 == 2 * 'ab'.
            var (seq, times) = a is string or List<object?> ? (a, ToLong(b)) : (b, ToLong(a));
            if (seq is string s)
            {
                return times <= 0 ? "" : new StringBuilder().Insert(0, s, (int)times).ToString();
            }
            if (seq is List<object?> l)
            {
                return Enumerable.Repeat(l, (int)Math.Max(0, times)).SelectMany(x => x).ToList();
            }
        }
        if (op == "%" && a is string)
        {
            throw new JinjaException("printf-style '%' string formatting is not supported; build the string with '~' or str.format()");
        }
        if (!IsNumeric(a) || !IsNumeric(b))
        {
            throw new JinjaException($"Unsupported operand types for {op}: '{JinjaValues.TypeName(a)}' and '{JinjaValues.TypeName(b)}'");
        }
        if (a is long or bool && b is long or bool)
        {
            long x = ToLong(a), y = ToLong(b);
            switch (op)
            {
                case "+": return x + y;
                case "-": return x - y;
                case "*": return x * y;
                case "/": return y == 0 ? throw DivZero() : (double)x / y;
                case "//": return y == 0 ? throw DivZero() : FloorDiv(x, y);
                case "%": return y == 0 ? throw DivZero() : ((x % y) + y) % y;
                case "**": return y >= 0 ? (object)(long)Math.Pow(x, y) : Math.Pow(x, y);
            }
        }
        double p = JinjaValues.ToDouble(a), q = JinjaValues.ToDouble(b);
        return op switch
        {
            "+" => p + q,
            "-" => p - q,
            "*" => p * q,
            "/" => q == 0 ? throw DivZero() : p / q,
            "//" => q == 0 ? throw DivZero() : Math.Floor(p / q),
            "%" => q == 0 ? throw DivZero() : p - (q * Math.Floor(p / q)),
            "**" => Math.Pow(p, q),
            _ => throw new JinjaException($"Unknown operator '{op}'"),
        };
    }

    private static bool IsNumeric(object? v) => v is long or double or bool;

    private static long ToLong(object? v) => v is bool b ? (b ? 1 : 0) : (long)v!;

    private static long FloorDiv(long x, long y) => (x / y) - ((x % y != 0 && (x < 0) != (y < 0)) ? 1 : 0);

    private static JinjaException DivZero() => new("Division by zero");

    public static bool Contains(object? container, object? item) => JinjaMarkup.Plain(container) switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : throw new JinjaException($"'in <string>' requires string as left operand, not {JinjaValues.TypeName(item)}"),
        List<object?> l => l.Any(x => JinjaValues.AreEqual(x, item)),
        JinjaDict d => JinjaDict.IsKey(item) ? d.ContainsKey(item!) : item is JinjaUndefined or null ? false : throw new JinjaException($"unhashable type: '{JinjaValues.TypeName(item)}'"),
        JinjaNamespace ns => item is string k2 && ns.Attributes.ContainsKey(k2),
        JinjaUndefined => false,
        _ => throw new JinjaException($"Argument of type '{JinjaValues.TypeName(container)}' is not iterable"),
    };

    /// <summary>obj.name: Jinja tries the attribute (a method) before the item, so `d.items` is the method.</summary>
    public static object? GetAttribute(object? obj, string name)
    {
        obj = JinjaMarkup.Plain(obj);
        if (obj is JinjaNamespace ns)
        {
            return ns.Attributes.TryGetValue(name, out var v) ? v : JinjaUndefined.Instance;
        }
        return JinjaMethods.TryBind(obj, name) ?? GetItemOrUndefined(obj, name);
    }

    /// <summary>obj[key]: the item first, then the attribute.</summary>
    public static object? GetItem(object? obj, object? key)
    {
        (obj, key) = (JinjaMarkup.Plain(obj), JinjaMarkup.Plain(key));
        var v = GetItemOrUndefined(obj, key);
        if (v is JinjaUndefined && key is string name)
        {
            return JinjaMethods.TryBind(obj, name) ?? (obj is JinjaNamespace ns && ns.Attributes.TryGetValue(name, out var a) ? a : v);
        }
        return v;
    }

    private static object? GetItemOrUndefined(object? obj, object? key)
    {
        switch (obj)
        {
            case JinjaDict d when JinjaDict.IsKey(key):
                return d.TryGetValue(key!, out var v) ? v : JinjaUndefined.Instance;
            case List<object?> l when key is long or bool:
                long i = key is bool b ? (b ? 1 : 0) : (long)key;
                if (i < 0)
                {
                    i += l.Count;
                }
                return i >= 0 && i < l.Count ? l[(int)i] : JinjaUndefined.Instance;
            case string s when key is long idx:
                var chars = StringInfoHelper.HasSurrogates(s) ? StringInfoHelper.CodePoints(s) : null;
                int count = chars?.Count ?? s.Length;
                if (idx < 0)
                {
                    idx += count;
                }
                return idx < 0 || idx >= count ? JinjaUndefined.Instance : chars is null ? s[(int)idx].ToString() : chars[(int)idx];
            default:
                return JinjaUndefined.Instance;
        }
    }

    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        obj = JinjaMarkup.Plain(obj);
        long st = step is null or JinjaUndefined ? 1 : (long)Index(step);
        if (st == 0)
        {
            throw new JinjaException("Slice step cannot be zero");
        }
        var chars = obj is string str && StringInfoHelper.HasSurrogates(str) ? StringInfoHelper.CodePoints(str) : null;
        int len = obj switch
        {
            List<object?> l => l.Count,
            string s => chars?.Count ?? s.Length,
            JinjaUndefined => 0,
            _ => throw new JinjaException($"'{JinjaValues.TypeName(obj)}' object is not subscriptable"),
        };
        var indices = SliceIndices(len, start, stop, st);
        return obj switch
        {
            List<object?> l => indices.Select(i => l[i]).ToList(),
            string s => chars is null ? string.Concat(indices.Select(i => s[i])) : string.Concat(indices.Select(i => chars[i])),
            _ => new List<object?>(),
        };
    }

    private static long Index(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new JinjaException($"Slice indices must be integers, not {JinjaValues.TypeName(v)}"),
    };

    // Python's slice.indices: clamp per step direction, then walk.
    private static IEnumerable<int> SliceIndices(int len, object? start, object? stop, long step)
    {
        long lo, hi;
        if (step > 0)
        {
            lo = start is null or JinjaUndefined ? 0 : Clamp(Index(start), len, 0, len);
            hi = stop is null or JinjaUndefined ? len : Clamp(Index(stop), len, 0, len);
            for (long i = lo; i < hi; i += step)
            {
                yield return (int)i;
            }
        }
        else
        {
            lo = start is null or JinjaUndefined ? len - 1 : Clamp(Index(start), len, -1, len - 1);
            hi = stop is null or JinjaUndefined ? -1 : Clamp(Index(stop), len, -1, len - 1);
            for (long i = lo; i > hi; i += step)
            {
                yield return (int)i;
            }
        }
    }

    private static long Clamp(long i, int len, long min, long max)
    {
        if (i < 0)
        {
            i += len;
        }
        return Math.Clamp(i, min, max);
    }
}
