using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Loom.Gateway.Templates;

/// <summary>The `|` filters chat templates use, with Jinja's (and transformers') semantics.</summary>
internal static partial class JinjaFilters
{
    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginning();

    public static object? Apply(string name, object? v, List<object?> args, JinjaDict kwargs)
    {
        switch (name)
        {
            // The filters that make (or keep) Markup; every other filter sees plain strings.
            case "safe": return v is JinjaMarkup ? v : new JinjaMarkup(JinjaValues.ToStr(v));
            case "escape" or "e": return v is JinjaMarkup ? v : new JinjaMarkup(JinjaMarkup.Escape(JinjaValues.ToStr(v)));
            case "string" when v is JinjaMarkup: return v;
        }
        v = JinjaMarkup.Plain(v);
        JinjaMarkup.Unwrap(args, kwargs);

        object? Arg(int i, string key, object? fallback = null) =>
            i < args.Count ? args[i] : kwargs.TryGetValue(key, out var x) ? x : fallback;

        switch (name)
        {
            case "tojson": return JinjaJson.Dumps(v, JinjaJson.Options.FromArguments(args, kwargs));
            case "trim": return JinjaMethods.Strip(Str(v), Arg(0, "chars"), true, true);
            case "length" or "count":
                return v switch
                {
                    string s => (long)StringInfoHelper.Length(s),
                    List<object?> l => (long)l.Count,
                    JinjaDict d => (long)d.Count,
                    JinjaNamespace ns => (long)ns.Attributes.Count,
                    JinjaUndefined => 0L,
                    _ => throw new JinjaException($"Object of type '{JinjaValues.TypeName(v)}' has no len()"),
                };
            case "items":
                return v switch
                {
                    JinjaDict d => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
                    JinjaUndefined => new List<object?>(),
                    _ => throw new JinjaException($"Can only get item pairs from a mapping, not {JinjaValues.TypeName(v)}"),
                };
            case "join":
                var attr = Arg(1, "attribute");
                var items = JinjaValues.Iterate(v);
                if (attr is not (null or JinjaUndefined))
                {
                    items = items.Select(x => GetPath(x, attr)).ToList();
                }
                return string.Join(Arg(0, "d", "") as string ?? "", items.Select(JinjaValues.ToStr));
            case "list": return JinjaValues.Iterate(v).ToList();
            case "string": return JinjaValues.ToStr(v);
            case "upper": return Str(v).ToUpperInvariant();
            case "lower": return Str(v).ToLowerInvariant();
            case "capitalize":
                string c = Str(v);
                return c.Length == 0 ? c : char.ToUpperInvariant(c[0]) + c[1..].ToLowerInvariant();
            case "title":
                return string.Concat(WordBeginning().Split(Str(v)).Where(p => p.Length > 0)
                    .Select(p => char.ToUpperInvariant(p[0]) + p[1..].ToLowerInvariant()));
            case "default" or "d":
                bool boolean = JinjaValues.IsTruthy(Arg(1, "boolean"));
                return v is JinjaUndefined || (boolean && !JinjaValues.IsTruthy(v)) ? Arg(0, "default_value", "") : v;
            case "first":
                var f = JinjaValues.Iterate(v);
                return f.Count > 0 ? f[0] : JinjaUndefined.Instance;
            case "last":
                var l2 = JinjaValues.Iterate(v);
                return l2.Count > 0 ? l2[^1] : JinjaUndefined.Instance;
            case "reverse":
                return v is string rs ? string.Concat(Enumerable.Reverse(StringInfoHelper.CodePoints(rs))) : Enumerable.Reverse(JinjaValues.Iterate(v)).ToList();
            case "replace":
                return JinjaMethods.Replace(JinjaValues.ToStr(v), Str(Arg(0, "old")), Str(Arg(1, "new")), Arg(2, "count"));
            case "int": return ToInt(v, Arg(0, "default", 0L));
            case "float": return ToFloat(v, Arg(0, "default", 0.0));
            case "abs": return v is long al ? (object)Math.Abs(al) : Math.Abs(JinjaValues.ToDouble(v));
            case "round":
                int precision = (int)(Arg(0, "precision", 0L) as long? ?? 0);
                string method = Arg(1, "method", "common") as string ?? "common";
                double rv = JinjaValues.ToDouble(v);
                return method switch
                {
                    "floor" => Math.Floor(rv * Math.Pow(10, precision)) / Math.Pow(10, precision),
                    "ceil" => Math.Ceiling(rv * Math.Pow(10, precision)) / Math.Pow(10, precision),
                    _ => Math.Round(rv, precision, MidpointRounding.ToEven),
                };
            case "map": return Map(v, args, kwargs);
            // Jinja2 runs map/select/reject only `if seq:`, so None (a template's `tools` when the
            // request has none) filters to nothing instead of failing.
            case "select" or "reject":
                return Select(IterateIfTruthy(v), x => x, args, 0, name == "select");
            case "selectattr" or "rejectattr":
                var path = Arg(0, "attribute");
                return Select(IterateIfTruthy(v), x => GetPath(x, path), args, 1, name == "selectattr");
            case "unique":
                var seen = new List<object?>();
                var uattr = Arg(1, "attribute");
                var result = new List<object?>();
                foreach (var x in JinjaValues.Iterate(v))
                {
                    var key = Fold(uattr is null ? x : GetPath(x, uattr), JinjaValues.IsTruthy(Arg(0, "case_sensitive")));
                    if (!seen.Any(s => JinjaValues.AreEqual(s, key)))
                    {
                        seen.Add(key);
                        result.Add(x);
                    }
                }
                return result;
            case "sort":
                bool reverse = JinjaValues.IsTruthy(Arg(0, "reverse"));
                bool cs = JinjaValues.IsTruthy(Arg(1, "case_sensitive"));
                var sattr = Arg(2, "attribute");
                // Python's sorted(reverse=True) keeps equal items in their original order, so the
                // comparison is flipped rather than the sorted list reversed.
                return JinjaValues.Sort(JinjaValues.Iterate(v), (a, b) => (reverse ? -1 : 1) * JinjaValues.Compare(
                    Fold(sattr is null ? a : GetPath(a, sattr), cs), Fold(sattr is null ? b : GetPath(b, sattr), cs)));
            case "dictsort":
                if (v is not JinjaDict dd)
                {
                    throw new JinjaException("dictsort expects a mapping");
                }
                bool dcs = JinjaValues.IsTruthy(Arg(0, "case_sensitive"));
                int by = Arg(1, "by", "key") as string == "value" ? 1 : 0;
                int sign = JinjaValues.IsTruthy(Arg(2, "reverse")) ? -1 : 1;
                var pairs = JinjaValues.Sort(dd.Select(kv => new List<object?> { kv.Key, kv.Value }),
                    (a, b) => sign * JinjaValues.Compare(Fold(a[by], dcs), Fold(b[by], dcs)));
                return pairs.Cast<object?>().ToList();
            case "sum":
                var sumAttr = Arg(0, "attribute");
                object? total = Arg(1, "start", 0L);
                foreach (var x in JinjaValues.Iterate(v))
                {
                    total = JinjaOperators.Binary("+", total, sumAttr is null ? x : GetPath(x, sumAttr));
                }
                return total;
            case "min" or "max":
                var mm = JinjaValues.Iterate(v);
                if (mm.Count == 0)
                {
                    return JinjaUndefined.Instance;
                }
                var best = mm[0];
                foreach (var x in mm.Skip(1))
                {
                    int r = JinjaValues.Compare(Fold(x, false), Fold(best, false));
                    best = (name == "min" ? r < 0 : r > 0) ? x : best;
                }
                return best;
            case "indent": return Indent(JinjaValues.ToStr(v), Arg(0, "width", 4L), JinjaValues.IsTruthy(Arg(1, "first")), JinjaValues.IsTruthy(Arg(2, "blank")));
            case "wordcount": return (long)Str(v).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            default:
                throw new JinjaException(UnimplementedBuiltins.Contains(name)
                    ? $"Filter '{name}' is a Jinja2 builtin that Loom's chat template renderer does not implement"
                    : $"Unknown filter '{name}'");
        }
    }

    // Jinja2's builtin filters left out because no published chat template uses them; naming them
    // in the error tells a template author it is Loom, not the template, that lacks the filter.
    private static readonly HashSet<string> UnimplementedBuiltins =
    [
        "attr", "batch", "center", "filesizeformat", "forceescape", "format", "groupby", "pprint", "random",
        "slice", "striptags", "truncate", "urlencode", "urlize", "wordwrap", "xmlattr",
    ];

    private static string Str(object? v) => v switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => JinjaValues.ToStr(v),
    };

    private static object? Fold(object? v, bool caseSensitive) => !caseSensitive && v is string s ? s.ToLowerInvariant() : v;

    /// <summary>Attribute paths like "function.name" (and integer parts like "0") as map/selectattr take them.</summary>
    private static object? GetPath(object? item, object? path)
    {
        if (path is long i)
        {
            return JinjaOperators.GetItem(item, i);
        }
        foreach (string part in JinjaValues.ToStr(path).Split('.'))
        {
            item = long.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long idx)
                ? JinjaOperators.GetItem(item, idx)
                : JinjaOperators.GetItem(item, part);
        }
        return item;
    }

    private static List<object?> IterateIfTruthy(object? v) => JinjaValues.IsTruthy(v) ? JinjaValues.Iterate(v) : [];

    private static List<object?> Map(object? v, List<object?> args, JinjaDict kwargs)
    {
        var items = IterateIfTruthy(v);
        if (kwargs.TryGetValue("attribute", out var attr))
        {
            kwargs.TryGetValue("default", out var dflt);
            return items.Select(x =>
            {
                var r = GetPath(x, attr);
                return r is JinjaUndefined && dflt is not null ? dflt : r;
            }).ToList();
        }
        if (args.Count == 0 || args[0] is not string filter)
        {
            throw new JinjaException("map needs a filter name or attribute=");
        }
        var rest = args.Skip(1).ToList();
        return items.Select(x => Apply(filter, x, rest, kwargs)).ToList();
    }

    private static List<object?> Select(List<object?> items, Func<object?, object?> pick, List<object?> args, int testIndex, bool keep)
    {
        string? test = args.Count > testIndex ? args[testIndex] as string : null;
        var testArgs = args.Skip(testIndex + 1).ToList();
        return items.Where(x =>
        {
            var value = pick(x);
            bool ok = test is null ? JinjaValues.IsTruthy(value) : JinjaTestFunctions.Apply(test, value, testArgs);
            return ok == keep;
        }).ToList();
    }

    private static long ToInt(object? v, object? fallback) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => (long)Math.Truncate(d),
        string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l) => l,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => (long)Math.Truncate(d),
        _ => fallback as long? ?? 0,
    };

    private static double ToFloat(object? v, object? fallback) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
        _ => fallback is long fl ? fl : fallback as double? ?? 0,
    };

    private static string Indent(string s, object? width, bool first, bool blank)
    {
        string pad = width is string w ? w : new string(' ', (int)(width as long? ?? 4));
        var lines = SplitLines(s + "\n");
        string rv;
        if (blank)
        {
            rv = string.Join("\n" + pad, lines);
        }
        else
        {
            var sb = new StringBuilder(lines[0]);
            if (lines.Count > 1)
            {
                sb.Append('\n').Append(string.Join("\n", lines.Skip(1).Select(line => line.Length > 0 ? pad + line : line)));
            }
            rv = sb.ToString();
        }
        return first ? pad + rv : rv;
    }

    // Python str.splitlines for \n, \r\n and \r (a final line break adds no empty line).
    private static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] is '\n' or '\r')
            {
                lines.Add(s[start..i]);
                if (s[i] == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
                {
                    i++;
                }
                start = i + 1;
            }
        }
        if (start < s.Length)
        {
            lines.Add(s[start..]);
        }
        return lines;
    }
}
