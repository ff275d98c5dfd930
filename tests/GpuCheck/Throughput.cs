using System.Diagnostics;
using Loom.Kernels;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.GpuCheck;

/// <summary>
/// Decode throughput on llama3-8b (random bf16 weights generated on the device machine's disk,
/// under the model folder and never under --out): batch 1 and 64, on the run's one backend.
/// </summary>
public static class Throughput
{
    public const string Preset = "llama3-8b";

    public static ThroughputFigures Run(IBackend backend, string modelRoot, CheckLog log)
    {
        var dir = Path.Combine(modelRoot, "llama3-8b-bf16");
        var sw = Stopwatch.StartNew();
        if (!File.Exists(Path.Combine(dir, "config.json")))
            ModelGenerator.Generate(ModelPresets.Get(Preset), dir, new GenerateOptions { DType = DType.BF16, Seed = 1 });
        log.Info($"llama3-8b ready in {sw.Elapsed.TotalSeconds:F0} s ({dir})");
        sw.Restart();
        using var model = LlamaModel.Load(dir, backend);
        log.Info($"llama3-8b loaded in {sw.Elapsed.TotalSeconds:F0} s");
        var rate = new Dictionary<int, double>();
        foreach (int batch in new[] { 1, 64 })
        {
            using var runner = new DirectRunner(model, batch, 160, kvDType: DType.BF16);
            var prompt = Enumerable.Range(0, 128).Select(i => 1000 + i).ToArray();
            runner.Step([.. Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, prompt, 0))]);
            const int steps = 24;
            runner.Step([.. Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, [5], 128))]);
            sw.Restart();
            for (int i = 1; i < steps; i++) runner.Step([.. Enumerable.Range(0, batch).Select(s => new SequenceChunk(s, [5 + i], 128 + i))]);
            double perStep = sw.Elapsed.TotalSeconds / (steps - 1);
            rate[batch] = batch / perStep;
            log.Info($"decode batch {batch}: {rate[batch]:F1} tok/s ({perStep * 1000:F2} ms/step)");
        }
        var figures = new ThroughputFigures(rate[1], rate[64], model.LinearWeightBytes);
        if (rate[1] > 0 && rate[64] > rate[1]) log.Pass("throughput llama3-8b", $"b1 {rate[1]:F1} tok/s, b64 {rate[64]:F1} tok/s");
        else log.Fail("throughput llama3-8b", $"b1 {rate[1]:F1} tok/s, b64 {rate[64]:F1} tok/s: batch 64 should beat batch 1");
        return figures;
    }
}
