using System.Diagnostics;

namespace Loom.Benchmarks;

/// <summary>Open-loop arrivals for `--rate`: a Poisson process, as vLLM's benchmark_serving draws it.</summary>
public static class Arrivals
{
    /// <summary>Arrival times in seconds from the start, exponential gaps of mean 1/rate, seeded.</summary>
    public static double[] Poisson(int count, double rate, int seed = 17)
    {
        var rng = new Random(seed);
        var at = new double[count];
        double t = 0;
        for (int i = 0; i < count; i++)
        {
            at[i] = t;
            t += -Math.Log(1 - rng.NextDouble()) / rate;
        }
        return at;
    }

    public static async Task Until(Stopwatch clock, double seconds)
    {
        double wait = seconds - clock.Elapsed.TotalSeconds;
        if (wait > 0) await Task.Delay(TimeSpan.FromSeconds(wait));
    }
}
