using System.Globalization;
using System.Text;

namespace Loom.Gateway.Templates;

/// <summary>Functions every chat template may call: the Jinja builtins plus transformers'
/// raise_exception and strftime_now.</summary>
internal static class JinjaGlobals
{
    public static void AddTo(JinjaScope scope, Func<DateTime> clock)
    {
        scope.Set("namespace", new JinjaCallable("namespace", (args, kwargs) =>
        {
            var ns = new JinjaNamespace();
            foreach (var a in args)
            {
                if (a is JinjaDict d)
                {
                    foreach (var kv in d)
                    {
                        ns.Attributes[kv.Key] = kv.Value;
                    }
                }
            }
            foreach (var kv in kwargs)
            {
                ns.Attributes[kv.Key] = kv.Value;
            }
            return ns;
        }));
        scope.Set("raise_exception", new JinjaCallable("raise_exception", (args, _) =>
            throw new JinjaException(args.Count > 0 ? JinjaValues.ToStr(args[0]) : "raise_exception called")));
        scope.Set("strftime_now", new JinjaCallable("strftime_now", (args, _) =>
            Strftime(clock(), args.Count > 0 ? JinjaValues.ToStr(args[0]) : "%Y-%m-%d")));
        scope.Set("range", new JinjaCallable("range", (args, _) => Range(args)));
        scope.Set("dict", new JinjaCallable("dict", (_, kwargs) =>
        {
            var d = new JinjaDict();
            foreach (var kv in kwargs)
            {
                d[kv.Key] = kv.Value;
            }
            return d;
        }));
    }

    private static List<object?> Range(List<object?> args)
    {
        long Arg(int i) => args[i] is long l ? l : throw new JinjaException("range() arguments must be integers");
        (long start, long stop, long step) = args.Count switch
        {
            1 => (0L, Arg(0), 1L),
            2 => (Arg(0), Arg(1), 1L),
            3 => (Arg(0), Arg(1), Arg(2)),
            _ => throw new JinjaException("range() takes 1 to 3 arguments"),
        };
        if (step == 0)
        {
            throw new JinjaException("range() step must not be zero");
        }
        var list = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            list.Add(i);
            if (list.Count > 100_000)
            {
                throw new JinjaException("range() too large");
            }
        }
        return list;
    }

    /// <summary>Python strftime for the directives date-stamping templates use (Llama 3.x: "%d %b %Y").</summary>
    public static string Strftime(DateTime t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char d = format[++i];
            sb.Append(d switch
            {
                'Y' => t.ToString("yyyy", inv),
                'y' => t.ToString("yy", inv),
                'm' => t.ToString("MM", inv),
                'd' => t.ToString("dd", inv),
                'e' => t.Day.ToString(inv).PadLeft(2),
                'b' or 'h' => t.ToString("MMM", inv),
                'B' => t.ToString("MMMM", inv),
                'a' => t.ToString("ddd", inv),
                'A' => t.ToString("dddd", inv),
                'H' => t.ToString("HH", inv),
                'I' => t.ToString("hh", inv),
                'M' => t.ToString("mm", inv),
                'S' => t.ToString("ss", inv),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => t.DayOfYear.ToString("000", inv),
                'w' => ((int)t.DayOfWeek).ToString(inv),
                '%' => "%",
                _ => "%" + d,
            });
        }
        return sb.ToString();
    }
}
