using Loom.Testing;
namespace Loom.Cluster.Tests;

/// <summary>
/// Redis down at start: the silo and the client gateway each say which connection string they
/// cannot reach, keep retrying, and do not crash. (In the Failover filter: it is the start-up side
/// of surviving a membership-store outage.)
/// </summary>
public sealed class RedisUnreachableFailoverTests
{
    [Fact]
    public async Task SiloAndGatewayNameTheConnectionStringAndKeepRetrying()
    {
        await using var procs = new ClusterProcesses();
        int closed = TestHost.FreePort(); // nothing listens here
        string redis = $"127.0.0.1:{closed}";
        var silo = procs.StartSilo("silo", [$"cluster:redis={redis}", "engine:backend=simulated", $"cluster:health_port={TestHost.FreePort()}"]);
        var gateway = procs.StartGateway("gateway", [$"cluster:redis={redis}", $"gateway:http_port={TestHost.FreePort()}", $"gateway:grpc_port={TestHost.FreePort()}"]);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline && !(Retried(silo) && Retried(gateway))) await Task.Delay(250);

        foreach (var p in new[] { silo, gateway })
        {
            Assert.False(p.Process.HasExited, $"{p.Name} exited ({(p.Process.HasExited ? p.Process.ExitCode : 0)}):\n{p.Log}");
            Assert.True(Retried(p), $"{p.Name} did not report the unreachable Redis twice:\n{p.Log}");
            Assert.Contains(redis, p.Log, StringComparison.Ordinal);
        }

        bool Retried(LoomProcess p) => p.Log.Split('\n').Count(l => l.Contains("cannot reach Redis", StringComparison.Ordinal) && l.Contains("retrying", StringComparison.Ordinal)) >= 2;
    }
}
