using System.CommandLine;
using System.Diagnostics;
using Loom.Gateway.Hosting;
using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Loom.Silo.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.ML.Tokenizers;

namespace Loom.Gateway.Cli;

/// <summary>
/// `loom serve [--model DIR] [--host H] [--port P] [--grpc-port P] [--api-key K ...] [--config FILE] [--section:key=value ...]`: the HTTP gateway. Without cluster.redis it
/// also hosts a silo in this process (the embedded default); with it, it is a pure client gateway.
/// `--prompt TEXT` instead completes one prompt through the same cluster path and exits (a smoke test).
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "YAML configuration file (default: env LOOM_CONFIG)" };
        var prompt = new Option<string?>("--prompt") { Description = "complete this text greedily through the cluster, print it and exit" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens to generate for --prompt", DefaultValueFactory = _ => 24 };
        var model = new Option<string?>("--model") { Description = "a Hugging Face model folder, a .gguf file, or a folder holding one (model.path; the demo model when absent)" };
        var host = new Option<string?>("--host") { Description = "address to listen on (gateway.host, default 0.0.0.0)" };
        var port = new Option<int?>("--port") { Description = "OpenAI HTTP port (gateway.http_port, default 8000)" };
        var grpcPort = new Option<int?>("--grpc-port") { Description = "gRPC port (gateway.grpc_port, default 8001; 0 = off)" };
        var apiKey = new Option<string[]>("--api-key") { Description = "accepted API key (repeatable; gateway.api_keys)", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("serve", "Serve a model (the built-in demo model when model.path is empty); other switches set configuration keys, e.g. --engine:block_size=32")
        {
            config, model, host, port, grpcPort, apiKey, prompt, maxTokens,
        };
        // Unmatched switches are configuration keys (--cluster:redis=host:6379), bound by LoomConfiguration.
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction((r, ct) =>
        {
            var file = r.GetValue(config);
            // The named flags are spelled-out configuration switches; they come last, so they win over YAML, env and generic switches.
            var flags = new List<string>();
            if (r.GetValue(model) is { } m) flags.Add($"--model:path={m}");
            if (r.GetValue(host) is { } h) flags.Add($"--gateway:host={h}");
            if (r.GetValue(port) is { } p) flags.Add($"--gateway:http_port={p}");
            if (r.GetValue(grpcPort) is { } gp) flags.Add($"--gateway:grpc_port={gp}");
            var keys = r.GetValue(apiKey) ?? [];
            for (int i = 0; i < keys.Length; i++) flags.Add($"--gateway:api_keys:{1000 + i}={keys[i]}"); // after any from YAML: the flag adds keys
            string[] args = [.. file is null ? [] : new[] { "--config", file }, .. r.UnmatchedTokens, .. flags];
            return Run(args, r.GetValue(prompt), r.GetValue(maxTokens), ct);
        });
        return cmd;
    }

    private static async Task<int> Run(string[] args, string? prompt, int maxTokens, CancellationToken ct)
    {
        if (maxTokens < 1) { await Console.Error.WriteLineAsync("error: --max-tokens must be at least 1"); return 2; }
        try
        {
            var options = LoomConfiguration.Load(args);
            if (prompt is not null) return await CompleteOnce(args, options, prompt, maxTokens, ct);
            if (!LoomGatewayHosting.IsEmbedded(options))
                await Silo.Hosting.LoomSiloHosting.WaitForRedisAsync(options.Cluster.Redis, Console.Error, ct);
            await using var app = LoomGatewayHosting.BuildWeb(args, options);
            Console.WriteLine($"loom: serving on http://{options.Gateway.Host}:{options.Gateway.HttpPort} " +
                (LoomGatewayHosting.IsEmbedded(options) ? "(embedded silo)" : $"(client of cluster '{options.Cluster.ClusterId}')"));
            await app.RunAsync(ct);
            return 0;
        }
        catch (LoomConfigException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { return 0; }
    }

    private static async Task<int> CompleteOnce(string[] args, LoomOptions options, string prompt, int maxTokens, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args });
        builder.AddLoomCluster(options);
        using var host = builder.Build();
        await host.StartAsync(ct);
        try
        {
            var client = host.Services.GetRequiredService<IGenerationClient>();
            var info = await client.GetModelInfoAsync(ct);
            Console.WriteLine($"loaded {info.Name} ({info.Architecture}): vocab {info.VocabSize}, max_model_len {info.MaxModelLen}, cluster ready in {sw.ElapsedMilliseconds} ms");
            // The HF tokenizer.json loader arrives with the gateway issue; the demo model's vocabulary is GPT-2's.
            var tokenizer = TiktokenTokenizer.CreateForModel("gpt2");
            int[] ids = [.. tokenizer.EncodeToIds(prompt)];
            if (ids.Length == 0) { await Console.Error.WriteLineAsync("error: the prompt is empty"); return 2; }
            if (ids.Any(id => id >= info.VocabSize)) { await Console.Error.WriteLineAsync("error: this model's vocabulary is not GPT-2's; pass a prompt to the demo model only"); return 2; }
            sw.Restart();
            double ttft = 0;
            var output = new List<int>();
            var request = new GenerationRequest("serve-prompt", ids, new SamplingParams { MaxTokens = maxTokens, Temperature = 0 });
            await foreach (var d in client.GenerateAsync(request, ct))
            {
                if (output.Count == 0) ttft = sw.Elapsed.TotalMilliseconds;
                if (d.TokenId >= 0) output.Add(d.TokenId);
            }
            double total = sw.Elapsed.TotalMilliseconds;
            Console.WriteLine($"prompt: {prompt}");
            Console.WriteLine($"completion: {tokenizer.Decode(output)}");
            Console.WriteLine($"{ids.Length} prompt tokens, {output.Count} generated; TTFT {ttft:F1} ms, " +
                $"{(output.Count > 1 ? (output.Count - 1) / ((total - ttft) / 1000) : 0):F1} tok/s decode");
            return 0;
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }
        finally { await host.StopAsync(CancellationToken.None); }
    }
}
