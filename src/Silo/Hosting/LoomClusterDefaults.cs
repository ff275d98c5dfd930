using Orleans.Configuration;
using Orleans.Hosting;

namespace Loom.Silo.Hosting;

/// <summary>
/// Failure detection tuned so a dead silo is declared within about 2 s (Orleans' defaults take
/// 12–30 s): probe every second, two missed probes and one vote suffice. Silo and client share one
/// ResponseTimeout because the silo heartbeats a stream at half of its own timeout; a shorter
/// client timeout would fail slow streams.
/// </summary>
public static class LoomClusterDefaults
{
    public static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(5);

    public static ISiloBuilder ConfigureFailureDetection(this ISiloBuilder silo)
    {
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(1);
            o.NumMissedProbesLimit = 2;
            o.NumVotesForDeathDeclaration = 1;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        });
        silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = ResponseTimeout);
        return silo;
    }

    public static IClientBuilder ConfigureFailureDetection(this IClientBuilder client)
    {
        client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = ResponseTimeout);
        client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
        return client;
    }
}
