using System.Diagnostics;
using Loom.Kernels;
using Loom.Kernels.Cuda;
using Loom.Silo.Models;

namespace Loom.GpuCheck;

/// <summary>Decode throughput on llama3-8b (random bf16 weights written on the device's disk): batch 1 and 64, and batch 1's share of HBM bandwidth.</summary>
public static class Throughput
{
    private const double HbmBytesPerSecond = 4.8e12; // H200

    public static void Run(string work, Checks checks)
    {
        var dir = Path.Combine(work, "llama3-8b-bf16");
        var sw = Stopwatch.StartNew();
        if (!File.Exists(Path.Combine(dir, "config.json")))
            ModelGenerator.Generate(ModelPresets.Get("llama3-8b"), dir, new GenerateOptions { DType = DType.BF16, Seed = 1 });
        Console.WriteLine($"llama3-8b ready in {sw.Elapsed.TotalSeconds:F0} s");
        using var cuda = new CudaBackend();
        using var model = LlamaModel.Load(dir, cuda);
        var results = new Dictionary<int, double>();
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
            results[batch] = batch / perStep;
            Console.WriteLine($"decode batch {batch}: {results[batch]:F1} tok/s ({perStep * 1000:F2} ms/step)");
        }
        double bw = model.LinearWeightBytes * results[1] / HbmBytesPerSecond;
        Console.WriteLine($"batch-1 HBM fraction: {bw:P1} of 4.8 TB/s; batch 64 = {results[64] / results[1]:F1}x batch 1");
        if (results[1] > 0) checks.Pass("throughput llama3-8b", $"b1 {results[1]:F1} tok/s ({bw:P1} HBM), b64 {results[64]:F1} tok/s");
    }
}
