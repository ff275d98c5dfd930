namespace Loom.GpuCheck;

/// <summary>
/// The pass/fail record of a run. Every check goes through <see cref="Run"/> or reports itself with
/// <see cref="Pass"/>/<see cref="Fail"/>, so an exception anywhere becomes a named failed check and
/// the run still reaches its summary line: a device task has minutes in all, and a run that dies
/// without saying which check failed wastes them.
/// </summary>
public sealed class CheckLog(TextWriter output)
{
    private readonly List<string> _lines = [];
    private readonly object _gate = new();

    public int Passed { get; private set; }
    public int Failed { get; private set; }

    /// <summary>The check running now (for the deadline report), or null between checks.</summary>
    public string? Current { get; private set; }

    /// <summary>Every line written, for the result file.</summary>
    public IReadOnlyList<string> Lines
    {
        get { lock (_gate) return [.. _lines]; }
    }

    public string Summary => $"{Passed} passed, {Failed} failed";

    private int _finished;

    /// <summary>True for the first caller only: the run's end and the watchdog race to print the one summary.</summary>
    public bool TryFinish() => Interlocked.Exchange(ref _finished, 1) == 0;

    public void Info(string line)
    {
        lock (_gate)
        {
            _lines.Add(line);
            output.WriteLine(line);
            output.Flush();
        }
    }

    public void Pass(string name, string detail)
    {
        lock (_gate) Passed++;
        Info($"PASS {name}: {detail}");
    }

    public void Fail(string name, string detail)
    {
        lock (_gate) Failed++;
        Info($"FAIL {name}: {detail}");
    }

    public void Fail(string name, Exception e) => Fail(name, Describe(e));

    /// <summary>Runs one check; an exception it throws is that check's failure.</summary>
    public bool Run(string name, Action body)
    {
        var previous = Current;
        Current = name;
        int failedBefore = Failed;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        try { body(); }
        catch (Exception e) { Fail(name, e); }
        finally { Current = previous; }
        if (sw.Elapsed.TotalSeconds >= 1) Info($"  ({name}: {sw.Elapsed.TotalSeconds:F1} s)");
        return Failed == failedBefore;
    }

    /// <summary>Runs a step whose result later checks need; null when it threw (then it is a failed check).</summary>
    public T? Run<T>(string name, Func<T> body)
        where T : class
    {
        T? result = null;
        Run(name, () => { result = body(); });
        return result;
    }

    /// <summary>What the deadline watchdog prints before it ends the process.</summary>
    public string DeadlineFailure(double seconds) =>
        $"the run passed its {seconds:F0} s deadline while '{Current ?? "(between checks)"}' was running";

    /// <summary>Type and message first (what a FAIL line must say), then the stack, capped: the device tool returns only the output's tail.</summary>
    public static string Describe(Exception e)
    {
        const int MaxChars = 1500;
        var text = $"{e.GetType().Name}: {e.Message}";
        var full = e.ToString();
        int nl = full.IndexOf('\n');
        if (nl > 0) text += "\n    " + full[(nl + 1)..].Replace("\n", "\n    ");
        return text.Length <= MaxChars ? text : text[..MaxChars] + " ...";
    }
}

/// <summary>A card's HBM bandwidth as the decode roofline uses it.</summary>
public sealed record HbmSpec(string Card, double? BytesPerSecond)
{
    public bool Known => BytesPerSecond is not null;
}

/// <summary>
/// Peak HBM bandwidth from the CUDA device name. The first device lent is usually an H100, so
/// assuming an H200 (as this check once did) understates the fraction by 30 %. Names the driver
/// reports: "NVIDIA H100 80GB HBM3" (SXM5), "NVIDIA H100 PCIe", "NVIDIA H200". Anything else
/// (H100 NVL, GH200, H800, ...) is unknown: better no fraction than a wrong one.
/// </summary>
public static class HbmTable
{
    public static readonly HbmSpec H100Sxm = new("H100 SXM", 3.35e12);
    public static readonly HbmSpec H100Pcie = new("H100 PCIe", 2.0e12);
    public static readonly HbmSpec H200 = new("H200", 4.8e12);

    public static HbmSpec ForDevice(string deviceName)
    {
        var n = deviceName.ToUpperInvariant();
        bool Has(string s) => n.Contains(s, StringComparison.Ordinal);
        if (Has("GH200") || Has("GH100")) return new("unknown", null);
        if (Has("H200")) return H200;
        if (Has("H100"))
        {
            if (Has("PCIE")) return H100Pcie;
            if (Has("NVL")) return new("unknown", null);
            if (Has("SXM") || Has("HBM3")) return H100Sxm;
        }
        return new("unknown", null);
    }

    /// <summary>
    /// The figure lines printed after the summary: decode tok/s at batch 1 and 64, and batch 1's
    /// share of HBM bandwidth for the detected card, or "unknown" with the raw rate.
    /// </summary>
    public static IReadOnlyList<string> FigureLines(string deviceName, ThroughputFigures? t)
    {
        var hbm = ForDevice(deviceName);
        if (t is null) return ["llama3-8b decode: not measured", $"HBM fraction: not measured (device \"{deviceName}\")"];
        double gbPerS = t.WeightBytes * t.Batch1TokensPerSecond / 1e9;
        var lines = new List<string>
        {
            $"llama3-8b decode: batch-1 {t.Batch1TokensPerSecond:F1} tok/s, batch-64 {t.Batch64TokensPerSecond:F1} tok/s " +
            $"({t.Batch64TokensPerSecond / t.Batch1TokensPerSecond:F1}x)",
        };
        if (hbm.BytesPerSecond is double bw)
            lines.Add($"HBM fraction (batch 1): {gbPerS * 1e9 / bw:P1} of {bw / 1e12:F2} TB/s; card assumed: {hbm.Card} (device \"{deviceName}\"); " +
                $"{t.WeightBytes / 1e9:F2} GB of weights per token = {gbPerS:F0} GB/s");
        else
            lines.Add($"HBM fraction: unknown: no bandwidth on file for device \"{deviceName}\" (known: H100 SXM 3.35, H100 PCIe 2.0, H200 4.8 TB/s); " +
                $"raw batch-1 {t.Batch1TokensPerSecond:F1} tok/s x {t.WeightBytes / 1e9:F2} GB of weights = {gbPerS:F0} GB/s");
        return lines;
    }
}

/// <summary>What the throughput check measured.</summary>
public sealed record ThroughputFigures(double Batch1TokensPerSecond, double Batch64TokensPerSecond, long WeightBytes);

/// <summary>
/// Where a run writes. Results (a few KB) go to --out, which the device tool sends back under
/// strict size limits; generated models (16 GB for llama3-8b) go to the model folder, which must
/// never lie inside --out.
/// </summary>
/// <remarks>
/// <c>CpuStandIn</c> runs every check with a CPU backend in the device's place: with --quick it
/// smoke-tests the published native image on a machine without a GPU (AOT-only failures show up
/// here, not in device time).
/// </remarks>
public sealed record GpuCheckOptions(bool Quick, bool RequireGpu, string? OutDir, string ModelRoot, double DeadlineSeconds, bool CpuStandIn = false)
{
    public const string DefaultFolder = "loom-gpu-check";

    public const string Usage = "[--quick] [--require-gpu] [--out DIR] [--models DIR] [--deadline SECONDS] [--cpu-standin]";

    /// <summary>Parses the arguments in <see cref="Usage"/>.</summary>
    public static GpuCheckOptions Parse(IReadOnlyList<string> args, string tempPath)
    {
        string? Value(string flag)
        {
            for (int i = 0; i < args.Count; i++)
                if (args[i] == flag)
                    return i + 1 < args.Count ? args[i + 1] : throw new ArgumentException($"{flag} needs a value");
            return null;
        }
        var known = new HashSet<string> { "--quick", "--require-gpu", "--out", "--models", "--deadline", "--cpu-standin" };
        for (int i = 0; i < args.Count; i++)
        {
            if (!known.Contains(args[i])) throw new ArgumentException($"unknown argument '{args[i]}' (usage: {Usage})");
            if (args[i] is "--out" or "--models" or "--deadline") i++;
        }
        string? outDir = Value("--out") is { } o ? Path.GetFullPath(o) : null;
        double deadline = Value("--deadline") is { } d ? double.Parse(d, System.Globalization.CultureInfo.InvariantCulture) : 0;
        return new(args.Contains("--quick"), args.Contains("--require-gpu"), outDir, ModelRootFor(outDir, Value("--models"), tempPath), deadline,
            args.Contains("--cpu-standin"));
    }

    /// <summary>
    /// The model folder: <paramref name="requested"/>, else TEMP/loom-gpu-check, else /tmp/loom-gpu-check
    /// when TEMP itself lies inside <paramref name="outDir"/>. A requested folder inside it is an error.
    /// </summary>
    public static string ModelRootFor(string? outDir, string? requested, string tempPath)
    {
        if (requested is not null)
        {
            var root = Path.GetFullPath(requested);
            if (outDir is not null && IsInside(root, outDir))
                throw new ArgumentException($"--models {root} lies inside --out {outDir}: --out is sent back with strict size limits, and models are gigabytes");
            return root;
        }
        foreach (var candidate in new[] { Path.Combine(tempPath, DefaultFolder), Path.Combine("/tmp", DefaultFolder), Path.Combine("/var/tmp", DefaultFolder) })
        {
            var root = Path.GetFullPath(candidate);
            if (outDir is null || !IsInside(root, outDir)) return root;
        }
        throw new ArgumentException($"--out {outDir} contains every temporary folder; pass --models DIR outside it");
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="dir"/> or below it (lexically, after normalising).</summary>
    public static bool IsInside(string path, string dir)
    {
        static string Norm(string p)
        {
            var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(p));
            return full.EndsWith(Path.DirectorySeparatorChar) ? full : full + Path.DirectorySeparatorChar; // "/" stays "/"
        }
        return Norm(path).StartsWith(Norm(dir), StringComparison.Ordinal);
    }
}
