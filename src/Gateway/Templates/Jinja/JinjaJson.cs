using System.Globalization;
using System.Text;

namespace Loom.Gateway.Templates;

/// <summary>
/// The tojson filter as transformers defines it, byte for byte:
/// <c>json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)</c>
/// with transformers' defaults (<c>ensure_ascii=False</c>), no HTML escaping, keys in insertion order.
/// Templates use every option: Kimi-K2 prints its tools with <c>separators=(',', ':')</c>.
/// </summary>
internal static class JinjaJson
{
    /// <summary>json.dumps' formatting knobs after Python's own defaulting.</summary>
    /// <param name="Indent">null: one line; otherwise the per-level indent (possibly empty, which still breaks lines).</param>
    public sealed record Options(string? Indent, string ItemSeparator, string KeySeparator, bool SortKeys, bool EnsureAscii)
    {
        public static readonly Options Default = new(null, ", ", ": ", false, false);

        // transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
        private static readonly string[] Parameters = ["ensure_ascii", "indent", "separators", "sort_keys"];

        /// <summary>Binds filter arguments the way Python binds them to transformers' tojson.</summary>
        public static Options FromArguments(List<object?> args, JinjaDict kwargs)
        {
            if (args.Count > Parameters.Length)
            {
                throw new JinjaException($"tojson() takes at most {Parameters.Length} arguments ({args.Count} given)");
            }
            var bound = new Dictionary<string, object?>(StringComparer.Ordinal);
            for (int i = 0; i < args.Count; i++)
            {
                bound[Parameters[i]] = args[i];
            }
            foreach (var (keyword, value) in kwargs)
            {
                string name = (string)keyword; // call sites only make string keywords
                if (!Parameters.Contains(name))
                {
                    throw new JinjaException($"tojson() got an unexpected keyword argument '{name}'");
                }
                if (!bound.TryAdd(name, value))
                {
                    throw new JinjaException($"tojson() got multiple values for argument '{name}'");
                }
            }
            string? indent = ToIndent(bound.GetValueOrDefault("indent"));
            var (item, key) = ToSeparators(bound.GetValueOrDefault("separators"), indent is not null);
            return new Options(indent, item, key, JinjaValues.IsTruthy(bound.GetValueOrDefault("sort_keys")),
                JinjaValues.IsTruthy(bound.GetValueOrDefault("ensure_ascii")));
        }

        // json.dumps: an int indents that many spaces (a negative one none, but lines still break),
        // a string is used as given; bool is an int in Python. The cap only stops a template from
        // making the server build gigabytes of spaces.
        private static string? ToIndent(object? v) => v switch
        {
            null or JinjaUndefined => null,
            string s => s,
            long n => new string(' ', (int)Math.Clamp(n, 0, 1024)),
            bool b => b ? " " : "",
            _ => throw new JinjaException($"tojson indent must be an int or a string, not {JinjaValues.TypeName(v)}"),
        };

        // Python unpacks `item_separator, key_separator = separators`, so any pair of strings works,
        // a 2-character string included. Without separators, indenting drops the space after ','.
        private static (string Item, string Key) ToSeparators(object? v, bool indenting)
        {
            if (v is null or JinjaUndefined)
            {
                return (indenting ? "," : ", ", ": ");
            }
            var parts = v is string or List<object?> ? JinjaValues.Iterate(v) : null;
            if (parts is not { Count: 2 } || parts[0] is not string item || parts[1] is not string key)
            {
                throw new JinjaException($"tojson separators must be a pair of strings like (',', ':'), not {JinjaValues.Repr(v)}");
            }
            return (item, key);
        }
    }

    public static string Dumps(object? value, Options? options = null)
    {
        var sb = new StringBuilder();
        Write(sb, value, options ?? Options.Default, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, Options o, int depth)
    {
        switch (v)
        {
            case null or JinjaUndefined: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : JinjaValues.FormatFloat(d));
                break;
            case string s: WriteString(sb, s, o.EnsureAscii); break;
            case JinjaMarkup m: WriteString(sb, m.Value, o.EnsureAscii); break;
            case List<object?> list:
                WriteContainer(sb, '[', ']', list.Count, o, depth, i => Write(sb, list[i], o, depth + 1));
                break;
            case JinjaDict dict: WriteDict(sb, dict, o, depth); break;
            case JinjaNamespace ns: WriteDict(sb, ns.Attributes, o, depth); break;
            default: throw new JinjaException($"Object of type {JinjaValues.TypeName(v)} is not JSON serializable");
        }
    }

    private static void WriteDict(StringBuilder sb, JinjaDict dict, Options o, int depth)
    {
        // Python sorts the keys as they are (str by code point; mixing str and int raises),
        // then writes non-str keys the way JSON needs them: 1 → "1", True → "true", 1.5 → "1.5".
        var entries = o.SortKeys ? JinjaValues.Sort(dict, (a, b) => JinjaValues.Compare(a.Key, b.Key)) : dict.ToList();
        WriteContainer(sb, '{', '}', entries.Count, o, depth, i =>
        {
            var key = entries[i].Key;
            WriteString(sb, key switch
            {
                string s => s,
                bool b => b ? "true" : "false",
                double d => double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : JinjaValues.FormatFloat(d),
                _ => JinjaValues.ToStr(key),
            }, o.EnsureAscii);
            sb.Append(o.KeySeparator);
            Write(sb, entries[i].Value, o, depth + 1);
        });
    }

    // json.dumps: empty containers stay "[]"/"{}"; with an indent every item starts a new line
    // after the item separator (trailing space and all), and the closer gets its own line.
    private static void WriteContainer(StringBuilder sb, char open, char close, int count, Options o, int depth, Action<int> item)
    {
        sb.Append(open);
        if (count == 0)
        {
            sb.Append(close);
            return;
        }
        for (int i = 0; i < count; i++)
        {
            if (i > 0)
            {
                sb.Append(o.ItemSeparator);
            }
            if (o.Indent is not null)
            {
                sb.Append('\n').Insert(sb.Length, o.Indent, depth + 1);
            }
            item(i);
        }
        if (o.Indent is not null)
        {
            sb.Append('\n').Insert(sb.Length, o.Indent, depth);
        }
        sb.Append(close);
    }

    // Python's escaping: ensure_ascii=False escapes only '"', '\\' and control characters below
    // 0x20; ensure_ascii=True also escapes everything outside ' '..'~' as \uXXXX, which for UTF-16
    // units yields the surrogate pairs Python writes for characters past the BMP.
    private static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7e))
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        sb.Append('"');
    }
}
