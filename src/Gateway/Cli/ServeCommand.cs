using System.CommandLine;
using System.Diagnostics;
using Loom.Gateway.Demo;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Microsoft.ML.Tokenizers;

namespace Loom.Gateway.Cli;

/// <summary>
/// `loom serve`. Until the HTTP/gRPC gateway lands (issue 5) it loads the model (the built-in demo
/// model by default), reports what it loaded, and completes one prompt greedily on the CPU backend,
/// which proves the whole load-and-forward path on a fresh machine.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Hugging Face model folder (default: the built-in demo model)" };
        var prompt = new Option<string>("--prompt") { Description = "text to complete", DefaultValueFactory = _ => "The quick brown fox" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens to generate", DefaultValueFactory = _ => 24 };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0 = all cores)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("serve", "Serve a model (the built-in demo model when --model is not given)") { model, prompt, maxTokens, threads };
        cmd.SetAction(r => Run(r.GetValue(model), r.GetValue(prompt)!, r.GetValue(maxTokens), r.GetValue(threads)));
        return cmd;
    }

    private static int Run(string? modelDir, string prompt, int maxTokens, int threads)
    {
        if (maxTokens < 1) { Console.Error.WriteLine("error: --max-tokens must be at least 1"); return 2; }
        try
        {
            modelDir ??= DemoModel.EnsureCreated(Console.Out);
            var sw = Stopwatch.StartNew();
            using var backend = new CpuBackend(threads);
            using var llm = LlamaModel.Load(modelDir, backend);
            var c = llm.Config;
            Console.WriteLine($"loaded {c.ArchitectureName} from {modelDir}: {c.NumLayers} layers, hidden {c.HiddenSize}, " +
                $"vocab {c.VocabSize}, {llm.LinearWeightBytes / 1e6:F1} MB of linear weights, in {sw.ElapsedMilliseconds} ms on {backend.Name}");

            // The HF tokenizer.json loader arrives with the gateway issue; the demo model's vocabulary is GPT-2's.
            var tokenizer = TiktokenTokenizer.CreateForModel("gpt2");
            int[] ids = [.. tokenizer.EncodeToIds(prompt)];
            if (ids.Length == 0) { Console.Error.WriteLine("error: the prompt is empty"); return 2; }
            if (ids.Any(id => id >= c.VocabSize)) { Console.Error.WriteLine("error: this model's vocabulary is not GPT-2's; pass a prompt to the demo model only"); return 2; }

            using var runner = new DirectRunner(llm, 1, ids.Length + maxTokens);
            sw.Restart();
            var logits = runner.Step([new SequenceChunk(0, ids, 0)]);
            double ttft = sw.Elapsed.TotalMilliseconds;
            var output = new List<int>();
            int pos = ids.Length;
            for (int i = 0; i < maxTokens; i++)
            {
                int next = ArgMax(logits);
                output.Add(next);
                if (c.EosTokenIds.Contains(next) || i == maxTokens - 1) break;
                logits = runner.Step([new SequenceChunk(0, [next], pos++)]);
            }
            double total = sw.Elapsed.TotalMilliseconds;
            Console.WriteLine($"prompt: {prompt}");
            Console.WriteLine($"completion: {tokenizer.Decode(output)}");
            Console.WriteLine($"{ids.Length} prompt tokens, {output.Count} generated; TTFT {ttft:F1} ms, " +
                $"{(output.Count > 1 ? (output.Count - 1) / ((total - ttft) / 1000) : 0):F1} tok/s decode");
            return 0;
        }
        catch (ModelLoadException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static int ArgMax(float[] x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
