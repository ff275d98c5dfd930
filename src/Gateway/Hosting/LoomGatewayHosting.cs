using Loom.Gateway.Serving;
using Loom.Gateway.Demo;
using Loom.Gateway.OpenAi;
using Loom.Silo.Configuration;
using Loom.Silo.Hosting;
using Loom.Silo.Worker;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace Loom.Gateway.Hosting;

/// <summary>
/// How `loom serve` is put together. No cluster.redis: this process hosts a silo (localhost
/// clustering, the embedded default) and the gateway. With cluster.redis: a pure Orleans client
/// gateway in front of the silos registered in Redis.
/// </summary>
public static class LoomGatewayHosting
{
    /// <summary>Adds the Orleans side (embedded silo or client) and registers <see cref="IGenerationClient"/>.</summary>
    public static IHostApplicationBuilder AddLoomCluster(this IHostApplicationBuilder builder, LoomOptions options)
    {
        builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning);
        builder.Services.AddSingleton(options);
        if (IsEmbedded(options))
        {
            // The gateway owns text: make sure the demo model's folder has its tokenizer before the silo loads it.
            if (options.Engine.Backend == "model" && options.Model.Path.Length == 0)
            {
                options.Model.Path = DemoModel.EnsureCreated(Console.Out);
                if (options.Model.Name.Length == 0) options.Model.Name = "demo";
            }
            builder.UseOrleans(silo => silo.UseLoomClustering(options).AddLoomWorker(options));
        }
        else
        {
            var c = options.Cluster;
            builder.UseOrleansClient(client =>
            {
                client.UseRedisClustering(o => o.ConfigurationOptions = LoomSiloHosting.RedisOptions(c.Redis));
                client.Configure<ClusterOptions>(o => { o.ClusterId = c.ClusterId; o.ServiceId = c.ServiceId; });
                client.ConfigureFailureDetection();
                // Silos may come up after the gateway: keep trying, and say what is missing.
                client.UseConnectionRetryFilter(async (e, ct) =>
                {
                    await Console.Error.WriteLineAsync($"no silo reachable in cluster '{c.ClusterId}' via Redis '{LoomSiloHosting.DescribeRedis(c.Redis)}': {e.Message}; retrying");
                    await Task.Delay(TimeSpan.FromSeconds(1), ct);
                    return true;
                });
            });
        }
        var firstToken = options.Gateway.FirstTokenTimeoutSeconds > 0 ? TimeSpan.FromSeconds(options.Gateway.FirstTokenTimeoutSeconds) : (TimeSpan?)null;
        builder.Services.AddSingleton<IGenerationClient>(sp => new OrleansGenerationClient(
            sp.GetRequiredService<IGrainFactory>(), sp.GetService<ILogger<OrleansGenerationClient>>(), firstTokenTimeout: firstToken));
        return builder;
    }

    public static bool IsEmbedded(LoomOptions options) => options.Cluster.Redis.Length == 0;

    /// <summary>The HTTP gateway: Kestrel on gateway.http_port, the cluster, and the OpenAI API.</summary>
    /// <summary>Listens on gateway.host: every interface for 0.0.0.0 / ::, else that address (a name resolves to loopback only for localhost).</summary>
    private static void Listen(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions k, string host, int port, Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions>? configure)
    {
        configure ??= _ => { };
        if (host is "" or "0.0.0.0" or "*" or "::" or "[::]") k.ListenAnyIP(port, configure);
        else if (host == "localhost") k.ListenLocalhost(port, configure);
        else k.Listen(System.Net.IPAddress.Parse(host), port, configure);
    }

    public static WebApplication BuildWeb(string[] args, LoomOptions options)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        var g = options.Gateway;
        builder.WebHost.ConfigureKestrel(k =>
        {
            Listen(k, g.Host, g.HttpPort, null);
            // gRPC gets its own port: HTTP/2 without TLS cannot share one with HTTP/1.1.
            if (g.GrpcPort > 0) Listen(k, g.Host, g.GrpcPort, l => l.Protocols = HttpProtocols.Http2);
            // The API enforces max_body_bytes itself so that oversize bodies get an OpenAI-shaped 413.
            k.Limits.MaxRequestBodySize = null;
        });
        builder.AddLoomCluster(options);
        if (options.Model.Name.Length > 0) g.ServedModelName = options.Model.Name;
        if (options.Model.ToolCallParser.Length > 0) g.ToolCallParser = options.Model.ToolCallParser;
        builder.Services.AddLoomApi(g);
        var app = builder.Build();
        app.MapLoomApi();
        return app;
    }
}
