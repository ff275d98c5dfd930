namespace Loom.Benchmarks;

/// <summary>Per-request timestamps of one benchmark run, reduced the way vLLM's benchmark_serving reports them.</summary>
public sealed class RunMetrics(int requests)
{
    private readonly double[] _submit = new double[requests];
    private readonly double[] _first = Enumerable.Repeat(double.NaN, requests).ToArray();
    private readonly double[] _last = new double[requests];
    private readonly int[] _tokens = new int[requests];
    private readonly List<double> _itl = [];
    private readonly object _gate = new();

    public double Duration { get; private set; }
    public int PeakConcurrency { get; private set; }
    public long OutputTokens => _tokens.Sum();

    public void Submitted(int i, double t) { lock (_gate) _submit[i] = t; }

    public void Token(int i, double t)
    {
        lock (_gate)
        {
            if (double.IsNaN(_first[i])) _first[i] = t;
            else _itl.Add(t - _last[i]);
            _last[i] = t;
            _tokens[i]++;
        }
    }

    public void Finished(int i, double t) { lock (_gate) _last[i] = t; }

    /// <summary>The request's true token count when one observed chunk may carry several (HTTP streaming).</summary>
    public void SetTokens(int i, int tokens) { lock (_gate) _tokens[i] = tokens; }

    public void Complete(double duration, int peak)
    {
        Duration = duration;
        PeakConcurrency = peak;
    }

    public double OutputTokS => OutputTokens / Duration;
    public double RequestS => requests / Duration;

    public double TtftMs(double q) => Percentile(_first.Zip(_submit, (f, s) => (f - s) * 1000).ToList(), q);
    public double ItlMs(double q) => Percentile(_itl.Select(x => x * 1000).ToList(), q);

    /// <summary>Time per output token after the first, per request.</summary>
    public double TpotMs(double q) => Percentile(Enumerable.Range(0, requests).Where(i => _tokens[i] > 1)
        .Select(i => (_last[i] - _first[i]) * 1000 / (_tokens[i] - 1)).ToList(), q);

    public double E2eMs(double q) => Percentile(_last.Zip(_submit, (l, s) => (l - s) * 1000).ToList(), q);

    private static double Percentile(List<double> xs, double q)
    {
        if (xs.Count == 0) return double.NaN;
        xs.Sort();
        double pos = q * (xs.Count - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
    }
}
