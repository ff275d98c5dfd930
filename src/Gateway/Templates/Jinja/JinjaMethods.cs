using System.Globalization;
using System.Text;

namespace Loom.Gateway.Templates;

/// <summary>Python methods templates call on strings, dicts and lists (`s.strip()`, `d.items()`).</summary>
internal static class JinjaMethods
{
    public static JinjaCallable? TryBind(object? obj, string name) => JinjaMarkup.Plain(obj) switch
    {
        string s => BindString(s, name),
        JinjaDict d => BindDict(d, name),
        List<object?> l => BindList(l, name),
        _ => null,
    };

    private static JinjaCallable Method(string name, Func<List<object?>, JinjaDict, object?> f) => new(name, f);

    private static object? Arg(List<object?> args, JinjaDict kwargs, int i, string name, object? fallback = null) =>
        i < args.Count ? args[i] : kwargs.TryGetValue(name, out var v) ? v : fallback;

    private static JinjaCallable? BindString(string s, string name) => name switch
    {
        "strip" => Method(name, (a, k) => Strip(s, Arg(a, k, 0, "chars"), true, true)),
        "lstrip" => Method(name, (a, k) => Strip(s, Arg(a, k, 0, "chars"), true, false)),
        "rstrip" => Method(name, (a, k) => Strip(s, Arg(a, k, 0, "chars"), false, true)),
        "split" => Method(name, (a, k) => Split(s, Arg(a, k, 0, "sep"), Arg(a, k, 1, "maxsplit", -1L))),
        "startswith" => Method(name, (a, k) => AnyPrefix(Arg(a, k, 0, "prefix"), p => s.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => Method(name, (a, k) => AnyPrefix(Arg(a, k, 0, "suffix"), p => s.EndsWith(p, StringComparison.Ordinal))),
        "upper" => Method(name, (_, _) => s.ToUpperInvariant()),
        "lower" => Method(name, (_, _) => s.ToLowerInvariant()),
        "title" => Method(name, (_, _) => Title(s)),
        "capitalize" => Method(name, (_, _) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant()),
        "replace" => Method(name, (a, k) => Replace(s, Str(Arg(a, k, 0, "old")), Str(Arg(a, k, 1, "new")), Arg(a, k, 2, "count", -1L))),
        "find" => Method(name, (a, k) => (long)s.IndexOf(Str(Arg(a, k, 0, "sub")), StringComparison.Ordinal)),
        "count" => Method(name, (a, k) => CountOccurrences(s, Str(Arg(a, k, 0, "sub")))),
        "join" => Method(name, (a, k) => string.Join(s, JinjaValues.Iterate(Arg(a, k, 0, "iterable")).Select(JinjaValues.ToStr))),
        "format" => Method(name, (a, k) => Format(s, a, k)),
        "isdigit" => Method(name, (_, _) => s.Length > 0 && s.All(char.IsDigit)),
        "isalpha" => Method(name, (_, _) => s.Length > 0 && s.All(char.IsLetter)),
        "isspace" => Method(name, (_, _) => s.Length > 0 && s.All(char.IsWhiteSpace)),
        _ => null,
    };

    private static JinjaCallable? BindDict(JinjaDict d, string name) => name switch
    {
        "items" => Method(name, (_, _) => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()),
        "keys" => Method(name, (_, _) => d.Keys.Cast<object?>().ToList()),
        "values" => Method(name, (_, _) => d.Values.ToList()),
        "get" => Method(name, (a, k) => Arg(a, k, 0, "key") is var key && JinjaDict.IsKey(key) && d.TryGetValue(key!, out var v) ? v : Arg(a, k, 1, "default")),
        _ => null,
    };

    private static JinjaCallable? BindList(List<object?> l, string name) => name switch
    {
        "append" => Method(name, (a, _) =>
        {
            l.Add(a.Count > 0 ? a[0] : throw new JinjaException("append() takes exactly one argument"));
            return null;
        }),
        "extend" => Method(name, (a, _) =>
        {
            l.AddRange(JinjaValues.Iterate(a.Count > 0 ? a[0] : null));
            return null;
        }),
        "pop" => Method(name, (a, _) =>
        {
            if (l.Count == 0)
            {
                throw new JinjaException("pop from empty list");
            }
            int i = a.Count > 0 && a[0] is long n ? (int)(n < 0 ? n + l.Count : n) : l.Count - 1;
            var v = l[i];
            l.RemoveAt(i);
            return v;
        }),
        "index" => Method(name, (a, _) =>
        {
            int i = l.FindIndex(x => JinjaValues.AreEqual(x, a.Count > 0 ? a[0] : null));
            return i >= 0 ? (long)i : throw new JinjaException("value is not in list");
        }),
        "count" => Method(name, (a, _) => (long)l.Count(x => JinjaValues.AreEqual(x, a.Count > 0 ? a[0] : null))),
        _ => null,
    };

    private static string Str(object? v) => v as string ?? throw new JinjaException($"Expected a string argument, got {JinjaValues.TypeName(v)}");

    public static string Strip(string s, object? chars, bool left, bool right)
    {
        Func<char, bool> strip = chars is string cs ? cs.Contains : char.IsWhiteSpace;
        int start = 0, end = s.Length;
        while (left && start < end && strip(s[start]))
        {
            start++;
        }
        while (right && end > start && strip(s[end - 1]))
        {
            end--;
        }
        return s[start..end];
    }

    private static List<object?> Split(string s, object? sep, object? maxsplit)
    {
        long max = maxsplit is long m ? m : -1;
        var parts = new List<object?>();
        if (sep is null or JinjaUndefined)
        {
            // Python: runs of whitespace separate, no empty strings at the ends.
            int i = 0;
            while (true)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i]))
                {
                    i++;
                }
                if (i >= s.Length)
                {
                    break;
                }
                if (max >= 0 && parts.Count >= max)
                {
                    parts.Add(s[i..].TrimEnd());
                    break;
                }
                int j = i;
                while (j < s.Length && !char.IsWhiteSpace(s[j]))
                {
                    j++;
                }
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        string sp = Str(sep);
        if (sp.Length == 0)
        {
            throw new JinjaException("empty separator");
        }
        int pos = 0;
        while (max < 0 || parts.Count < max)
        {
            int k = s.IndexOf(sp, pos, StringComparison.Ordinal);
            if (k < 0)
            {
                break;
            }
            parts.Add(s[pos..k]);
            pos = k + sp.Length;
        }
        parts.Add(s[pos..]);
        return parts;
    }

    private static bool AnyPrefix(object? arg, Func<string, bool> test) => arg switch
    {
        string p => test(p),
        List<object?> l => l.Any(x => test(Str(x))),
        _ => throw new JinjaException("startswith/endswith takes a string or a tuple of strings"),
    };

    public static string Replace(string s, string old, string replacement, object? count)
    {
        long n = count is long c ? c : -1;
        if (n < 0)
        {
            return old.Length == 0 ? string.Join(replacement, s.Select(ch => ch.ToString()).Prepend("").Append("")) : s.Replace(old, replacement, StringComparison.Ordinal);
        }
        var sb = new StringBuilder();
        int pos = 0;
        for (long done = 0; done < n; done++)
        {
            int k = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (k < 0 || old.Length == 0)
            {
                break;
            }
            sb.Append(s, pos, k - pos).Append(replacement);
            pos = k + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static long CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0)
        {
            return s.Length + 1;
        }
        long n = 0;
        for (int k = s.IndexOf(sub, StringComparison.Ordinal); k >= 0; k = s.IndexOf(sub, k + sub.Length, StringComparison.Ordinal))
        {
            n++;
        }
        return n;
    }

    /// <summary>Python str.title: a letter after a non-letter is upper-cased, others lower-cased.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevLetter = false;
        foreach (char c in s)
        {
            sb.Append(prevLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }

    /// <summary>str.format with {}, {0} and {name} fields (no format specs).</summary>
    private static string Format(string s, List<object?> args, JinjaDict kwargs)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if ((c == '{' || c == '}') && i + 1 < s.Length && s[i + 1] == c)
            {
                sb.Append(c);
                i++;
                continue;
            }
            if (c != '{')
            {
                sb.Append(c);
                continue;
            }
            int close = s.IndexOf('}', i);
            if (close < 0)
            {
                throw new JinjaException("Single '{' encountered in format string");
            }
            string field = s[(i + 1)..close];
            if (field.AsSpan().ContainsAny(":!.["))
            {
                throw new JinjaException($"str.format field '{{{field}}}' uses a conversion, format spec or lookup, which is not supported");
            }
            object? v = field.Length == 0 ? (auto < args.Count ? args[auto++] : throw new JinjaException("Replacement index out of range"))
                : int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out int idx) ? (idx < args.Count ? args[idx] : throw new JinjaException("Replacement index out of range"))
                : kwargs.TryGetValue(field, out var kv) ? kv : throw new JinjaException($"Missing format key '{field}'");
            sb.Append(JinjaValues.ToStr(v));
            i = close;
        }
        return sb.ToString();
    }
}
