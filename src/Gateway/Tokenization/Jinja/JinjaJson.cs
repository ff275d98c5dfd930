using System.Globalization;
using System.Text;

namespace Loom.Gateway.Tokenization;

/// <summary>
/// The tojson filter as transformers defines it: Python json.dumps(ensure_ascii=False) with
/// separators ", " / ": " (or "," / ": " when indenting), no HTML escaping, keys in insertion order.
/// </summary>
internal static class JinjaJson
{
    public static string Dumps(object? value, string? indent = null, bool sortKeys = false, bool ensureAscii = false)
    {
        var sb = new StringBuilder();
        Write(sb, value, indent, sortKeys, ensureAscii, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, string? indent, bool sortKeys, bool ascii, int depth)
    {
        switch (v)
        {
            case null or JinjaUndefined: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : JinjaValues.FormatFloat(d));
                break;
            case string s: WriteString(sb, s, ascii); break;
            case List<object?> list:
                WriteContainer(sb, '[', ']', list.Count, indent, depth, i => Write(sb, list[i], indent, sortKeys, ascii, depth + 1));
                break;
            case JinjaDict dict: WriteDict(sb, dict, indent, sortKeys, ascii, depth); break;
            case JinjaNamespace ns: WriteDict(sb, ns.Attributes, indent, sortKeys, ascii, depth); break;
            default: throw new JinjaException($"Object of type {JinjaValues.TypeName(v)} is not JSON serializable");
        }
    }

    private static void WriteDict(StringBuilder sb, JinjaDict dict, string? indent, bool sortKeys, bool ascii, int depth)
    {
        var entries = sortKeys ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList() : dict.ToList();
        WriteContainer(sb, '{', '}', entries.Count, indent, depth, i =>
        {
            WriteString(sb, entries[i].Key, ascii);
            sb.Append(": ");
            Write(sb, entries[i].Value, indent, sortKeys, ascii, depth + 1);
        });
    }

    private static void WriteContainer(StringBuilder sb, char open, char close, int count, string? indent, int depth, Action<int> item)
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
                sb.Append(indent is null ? ", " : ",");
            }
            if (indent is not null)
            {
                sb.Append('\n').Insert(sb.Length, indent, depth + 1);
            }
            item(i);
        }
        if (indent is not null)
        {
            sb.Append('\n').Insert(sb.Length, indent, depth);
        }
        sb.Append(close);
    }

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
