using Loom.Silo.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

using Loom.Silo.Worker;

namespace Loom.Silo.Hosting;

/// <summary>The standalone silo process: an Orleans silo plus a tiny HTTP port for the readiness probe.</summary>
public static class LoomSiloHost
{
    public static async Task<int> RunAsync(string[] args, CancellationToken ct = default)
    {
        LoomOptions options;
        try { options = LoomConfiguration.Load(args); }
        catch (LoomConfigException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        try
        {
            if (options.Cluster.Redis.Length > 0) await LoomSiloHosting.WaitForRedisAsync(options.Cluster.Redis, Console.Error, stop.Token);
            await using var app = Build(args, options);
            await app.RunAsync(stop.Token);
            return 0;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { return 0; }
        catch (LoomConfigException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }
    }

    public static WebApplication Build(string[] args, LoomOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args });
        builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning)
            .AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        var port = options.Cluster.HealthPort;
        builder.WebHost.ConfigureKestrel(k => { if (port > 0) k.ListenAnyIP(port); });
        if (port == 0) builder.WebHost.UseUrls(); // no health port: listen nowhere
        builder.UseOrleans(silo => silo.UseLoomClustering(options).AddLoomWorker(options));
        var app = builder.Build();
        // Readiness: 200 once the model is loaded and the worker serves; 503 with the reason before,
        // while stopping, and while sick (repeated step failures, a device error).
        app.MapGet("/health", (WorkerEngine w) => w.NotReadyReason is { } why
            ? Results.Text(why, "text/plain", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Ok("ok"));
        // Liveness: 503 only when a restart is the cure (the engine thread died, or the worker is sick);
        // a loading or draining worker stays alive.
        app.MapGet("/live", (WorkerEngine w) => w.IsAlive ? Results.Ok("ok")
            : Results.Text(w.NotReadyReason ?? "the engine stopped", "text/plain", statusCode: StatusCodes.Status503ServiceUnavailable));
        // This worker's own load (the gateway's /metrics sums all workers): which silo serves what, for operators and tests.
        app.MapGet("/stats", (WorkerEngine w) => w.TryGetStats() is { } s
            ? Results.Json(new { running = s.Running, waiting = s.Waiting, free_blocks = s.FreeBlocks, generation_tokens = s.GenerationTokens, draining = w.IsDraining })
            : Results.StatusCode(StatusCodes.Status503ServiceUnavailable));
        return app;
    }
}
