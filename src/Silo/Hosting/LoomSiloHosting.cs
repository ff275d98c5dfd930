using System.Net;
using Loom.Silo.Configuration;
using Loom.Silo.Worker;
using Loom.Silo.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;
using StackExchange.Redis;

namespace Loom.Silo.Hosting;

/// <summary>How a Loom silo is put together; used by the silo host, `loom serve` (embedded) and the tests.</summary>
public static class LoomSiloHosting
{
    /// <summary>The worker side: engine singleton, pinned worker grain, router view, start-up registration, failure detection.</summary>
    public static ISiloBuilder AddLoomWorker(this ISiloBuilder silo, LoomOptions options)
    {
        silo.Services.AddSingleton(options);
        silo.Services.AddSingleton<WorkerEngine>();
        silo.Services.AddSingleton<WorkerDirectory>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, WorkerStartup>();
        silo.AddPlacementDirector<SiloPinnedPlacement, SiloPinnedPlacementDirector>();
        silo.ConfigureFailureDetection();
        return silo;
    }

    /// <summary>
    /// Membership: Redis when cluster.redis is set, else localhost clustering (the single-process
    /// default); in Kubernetes (POD_NAME and KUBERNETES_SERVICE_HOST set) endpoints and pod
    /// lifecycle come from Microsoft.Orleans.Hosting.Kubernetes.
    /// </summary>
    public static ISiloBuilder UseLoomClustering(this ISiloBuilder silo, LoomOptions options)
    {
        var c = options.Cluster;
        if (c.Redis.Length == 0)
        {
            silo.UseLocalhostClustering(c.SiloPort, c.GatewayPort, serviceId: c.ServiceId, clusterId: c.ClusterId);
            return silo;
        }
        silo.UseRedisClustering(o => o.ConfigurationOptions = RedisOptions(c.Redis));
        silo.Configure<ClusterOptions>(o => { o.ClusterId = c.ClusterId; o.ServiceId = c.ServiceId; });
        if (InKubernetes)
        {
            // Pod IP and names come from the downward API; silo/gateway ports stay ours.
            silo.UseKubernetesHosting();
            silo.Configure<EndpointOptions>(o => { o.SiloPort = c.SiloPort; o.GatewayPort = c.GatewayPort; });
        }
        else if (c.AdvertisedIp.Length > 0)
            silo.ConfigureEndpoints(IPAddress.Parse(c.AdvertisedIp), c.SiloPort, c.GatewayPort, listenOnAnyHostAddress: true);
        else
            silo.ConfigureEndpoints(c.SiloPort, c.GatewayPort, listenOnAnyHostAddress: true);
        return silo;
    }

    public static bool InKubernetes =>
        Environment.GetEnvironmentVariable("POD_NAME") is { Length: > 0 } && Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST") is { Length: > 0 };

    public static ConfigurationOptions RedisOptions(string connection)
    {
        var o = ConfigurationOptions.Parse(connection);
        // Keep retrying in the background instead of failing the silo when Redis blips.
        o.AbortOnConnectFail = false;
        return o;
    }

    /// <summary>The connection string without its password, for messages.</summary>
    public static string DescribeRedis(string connection)
    {
        try { return ConfigurationOptions.Parse(connection).ToString(includePassword: false); }
        catch (ArgumentException) { return "(unparsable connection string)"; }
    }

    /// <summary>
    /// Waits until Redis answers a PING, saying on every failed try which connection string (from
    /// cluster.redis) it cannot reach. Start-up retries rather than crashes: Redis often comes up after the silos.
    /// </summary>
    public static async Task WaitForRedisAsync(string connection, TextWriter log, CancellationToken ct)
    {
        var delay = TimeSpan.FromSeconds(1);
        while (true)
        {
            try
            {
                var o = ConfigurationOptions.Parse(connection);
                o.AbortOnConnectFail = true;
                o.ConnectTimeout = 3000;
                await using var mux = await ConnectionMultiplexer.ConnectAsync(o);
                await mux.GetDatabase().PingAsync();
                return;
            }
            catch (Exception e) when (e is RedisException or ArgumentException or TimeoutException)
            {
                await log.WriteLineAsync($"cannot reach Redis at '{DescribeRedis(connection)}' (cluster.redis): {e.Message.Split('\n')[0]}; retrying in {delay.TotalSeconds:F0} s");
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromSeconds(Math.Min(10, delay.TotalSeconds * 2));
            }
        }
    }
}
