using System.Globalization;
using System.Text;

namespace Loom.Gateway.Metrics;

/// <summary>A Prometheus histogram (cumulative buckets, sum, count); a lock per observation is cheap next to a token.</summary>
public sealed class Histogram(double[] upperBounds)
{
    private readonly long[] _counts = new long[upperBounds.Length];
    private readonly Lock _lock = new();
    private double _sum;
    private long _count;

    public void Observe(double value)
    {
        if (!double.IsFinite(value) || value < 0) return;
        lock (_lock)
        {
            int i = Array.BinarySearch(upperBounds, value);
            if (i < 0) i = ~i;
            if (i < _counts.Length) _counts[i]++;
            _sum += value;
            _count++;
        }
    }

    public long Count { get { lock (_lock) return _count; } }

    public void WriteTo(StringBuilder sb, string name, string labels)
    {
        long[] counts;
        double sum;
        long count;
        lock (_lock) { counts = (long[])_counts.Clone(); sum = _sum; count = _count; }
        long cumulative = 0;
        for (int i = 0; i < upperBounds.Length; i++)
        {
            cumulative += counts[i];
            sb.Append(name).Append("_bucket{").Append(labels).Append(",le=\"").Append(Prometheus.Format(upperBounds[i]))
              .Append("\"} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        sb.Append(name).Append("_bucket{").Append(labels).Append(",le=\"+Inf\"} ").Append(count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append(name).Append("_sum{").Append(labels).Append("} ").Append(Prometheus.Format(sum)).Append('\n');
        sb.Append(name).Append("_count{").Append(labels).Append("} ").Append(count.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }
}

/// <summary>Text exposition format 0.0.4 helpers.</summary>
public static class Prometheus
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Format(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN"
        : v.ToString("R", CultureInfo.InvariantCulture);

    public static string EscapeLabel(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    public static void Header(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
          .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    public static void Sample(StringBuilder sb, string name, string labels, double value) =>
        sb.Append(name).Append('{').Append(labels).Append("} ").Append(Format(value)).Append('\n');
}
