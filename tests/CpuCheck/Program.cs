using System.Diagnostics;
using System.Runtime.InteropServices;
using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Isa;
using Loom.Kernels.Tests;
using Loom.Silo.Models;
using Loom.Tools.Models;
using Loom.Silo.Tests.Models;

// loom-cpu-check: every CPU kernel of every ISA this process can run against the scalar
// double-precision reference, and one tiny-model forward on the best ISA against the
// transformers transcription. Prints "N passed, N failed"; exit code 1 on any failure.
var (best, reason) = CpuIsaSelector.Describe();
Console.WriteLine($"loom-cpu-check on {RuntimeInformation.ProcessArchitecture} ({RuntimeInformation.OSDescription}); best isa: {CpuIsaSelector.Label(best)} ({reason})");
var expect = Environment.GetEnvironmentVariable("LOOM_EXPECT_ISA");
int passed = 0, failed = 0;
var flaky = new List<string>();

void Check(string name, Action body)
{
    var sw = Stopwatch.StartNew();
    try
    {
        body();
        passed++;
        Console.WriteLine($"  pass  {name} ({sw.Elapsed.TotalSeconds:F1} s)");
    }
    catch (Exception e)
    {
        // The stack (inner exceptions included) names where. Under qemu-user one check (Portable
        // attention, in its managed reference code) failed twice at the end of a full test run and
        // never alone: a failure is retried once, and one that then passes is reported as flaky
        // here and in the summary rather than hidden or allowed to fail CI on the emulator alone.
        Console.WriteLine($"  FAIL  {name}: {e.GetType().Name}: {e.Message}");
        Console.WriteLine(string.Join('\n', e.ToString().Split('\n').Take(12).Select(l => "        " + l.TrimEnd())));
        try
        {
            body();
            passed++;
            flaky.Add(name);
            Console.WriteLine($"  FLAKY {name}: passed on retry");
        }
        catch (Exception again)
        {
            failed++;
            Console.WriteLine($"  FAIL  {name} (retry): {again.GetType().Name}: {again.Message}");
        }
    }
}

if (!string.IsNullOrEmpty(expect)) Check($"auto picks {expect}", () => Assert.Equal(expect, CpuIsaSelector.Name(best)));

foreach (var isa in Enum.GetValues<CpuIsa>())
{
    if (!CpuIsaSelector.IsSupported(isa, out var why))
    {
        Console.WriteLine($"{CpuIsaSelector.Name(isa)}: skipped ({why})");
        continue;
    }

    Console.WriteLine($"{CpuIsaSelector.Name(isa)}:");
    CpuBackend Backend() => new(2, isa);
    foreach (var dt in new[] { DType.F32, DType.BF16, DType.F16 })
        foreach (var (m, k, n) in new[] { (1, 7, 31), (1, 577, 95), (3, 33, 33), (13, 7, 64), (25, 64, 65), (70, 200, 33) })
            Check($"{isa} linear {dt} M={m} K={k} N={n}", () => { using var b = Backend(); KernelCases.Linear(b, dt, m, k, n, withBias: (m + n) % 2 == 0); });
    foreach (var (g, d, bs, kv) in new[] { (1, 64, 16, DType.F32), (3, 48, 7, DType.F32), (3, 64, 16, DType.BF16), (1, 57, 5, DType.BF16), (4, 128, 16, DType.F32) })
        Check($"{isa} attention group={g} d={d} block={bs} kv={kv}", () => { using var b = Backend(); KernelCases.Attention(b, g, d, bs, kv); });
    Check($"{isa} rmsnorm", () => { using var b = Backend(); KernelCases.RmsNorm(b, 17, 577); KernelCases.RmsNorm(b, 1, 1); });
    Check($"{isa} add+rmsnorm", () => { using var b = Backend(); KernelCases.AddRmsNorm(b, 17, 577); });
    Check($"{isa} rope", () => { using var b = Backend(); KernelCases.Rope(b, 5, 64, 16, 100); KernelCases.Rope(b, 4, 80, 20, 31); });
    Check($"{isa} silu*mul", () => { using var b = Backend(); KernelCases.SiluAndMul(b, 3, 31); KernelCases.SiluAndMul(b, 7, 1536); });
    foreach (var dt in new[] { DType.F32, DType.BF16, DType.F16 })
        Check($"{isa} embedding {dt}", () => { using var b = Backend(); KernelCases.Embedding(b, dt); });
    // Quantized (GGUF) linear layers: the int8 path (few rows) and the decoded-panel path (16+ rows).
    foreach (var (types, m, k, rows) in new[]
             {
                 ("Q8_0", 1, 96, "33"), ("Q4_0", 3, 160, "31"), ("Q5_0", 2, 96, "33"), ("Q4_K", 2, 512, "33"), ("Q6_K", 1, 256, "17"), ("Q6_K", 3, 768, "33"),
                 ("Q4_K,Q4_K,Q6_K", 5, 256, "32,17,9"), ("Q8_0", 20, 96, "31"), ("Q4_K,Q6_K", 17, 256, "31,33"),
             })
        Check($"{isa} quant linear {types} M={m} K={k} N={rows}", () =>
        {
            using var b = Backend();
            QuantCases.Linear(b, types.Split(',').Select(Enum.Parse<DType>).ToArray(), m, k, rows.Split(',').Select(int.Parse).ToArray(), withBias: true);
        });
    Check($"{isa} quant embedding", () => { using var b = Backend(); foreach (var t in new[] { DType.Q8_0, DType.Q4_0, DType.Q5_0, DType.Q4_K, DType.Q6_K }) QuantCases.Embedding(b, t); });
}

foreach (var dtype in new[] { DType.F32, DType.BF16 })
{
    Check($"tiny model forward ({dtype}, {CpuIsaSelector.Name(best)}) vs the double-precision reference", () =>
    {
        var dir = Directory.CreateTempSubdirectory("loom-cpu-check-").FullName;
        try
        {
            ModelGenerator.Generate(ModelPresets.Tiny, dir, new GenerateOptions { DType = dtype, Seed = 99 });
            var config = ModelConfig.Load(dir);
            var rng = new Random(11);
            int[] tokens = Enumerable.Range(0, 40).Select(_ => rng.Next(config.VocabSize)).ToArray();
            double[][] expected;
            using (var w = ModelWeights.Open(dir)) expected = HfReferenceForward.Logits(config, w, tokens);
            using var backend = new CpuBackend(2);
            using var model = LlamaModel.Load(dir, backend);
            using var runner = new DirectRunner(model, 1, 64);
            // Prefill 30 tokens in one chunk, then decode the rest one at a time.
            int v = config.VocabSize;
            var logits = runner.Step([new SequenceChunk(0, tokens[..30], 0)], allLogits: true);
            double maxDiff = 0;
            for (int p = 0; p < tokens.Length; p++)
            {
                if (p >= 30) logits = runner.Step([new SequenceChunk(0, [tokens[p]], p)]);
                var row = logits.AsSpan((p < 30 ? p : 0) * v, v);
                for (int i = 0; i < v; i++) maxDiff = Math.Max(maxDiff, Math.Abs(row[i] - expected[p][i]));
            }

            Assert.True(maxDiff < 2e-4, $"max abs diff {maxDiff:g3}");
            Console.WriteLine($"        max abs diff {maxDiff:g3}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    });
}

if (flaky.Count > 0) Console.WriteLine($"flaky: {flaky.Count} check(s) failed once and passed on retry: {string.Join("; ", flaky)}");
Console.WriteLine($"{passed} passed, {failed} failed");
return failed == 0 ? 0 : 1;
