using ScottPlot;

namespace Loom.Benchmarks;

/// <summary>Bars of output throughput per run, with median TTFT and ITL in the labels.</summary>
public static class EnginePlot
{
    public static void Write(string path, List<(string Name, double TokS, double TtftMs, double ItlMs)> runs)
    {
        var plot = new Plot();
        for (int i = 0; i < runs.Count; i++)
        {
            var bar = plot.Add.Bar(position: i, value: runs[i].TokS);
            bar.LegendText = "";
        }
        plot.Axes.Bottom.SetTicks(
            Enumerable.Range(0, runs.Count).Select(i => (double)i).ToArray(),
            runs.Select(r => $"{r.Name}\nTTFT {r.TtftMs:F0} ms\nITL {r.ItlMs:F1} ms").ToArray());
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.YLabel("output tokens / s");
        plot.Title("Loom engine, smollm2-135m bf16, CPU");
        plot.Axes.Margins(bottom: 0);
        plot.SavePng(path, 200 + 160 * runs.Count, 520);
        Console.WriteLine($"wrote {path}");
    }
}
