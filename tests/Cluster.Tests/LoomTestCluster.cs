using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Loom.Silo.Configuration;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Hosting;
using Loom.Silo.Worker;
using Loom.Silo.Models;
using Loom.Tools.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;

namespace Loom.Cluster.Tests;

/// <summary>An in-process cluster of Loom silos (each with its own engine) and a gateway client over it.</summary>
internal sealed class LoomTestCluster : IAsyncDisposable
{
    private LoomTestCluster(InProcessTestCluster cluster, TimeSpan? firstTokenTimeout)
    {
        Cluster = cluster;
        Client = new OrleansGenerationClient(cluster.Client, firstTokenTimeout: firstTokenTimeout);
    }

    public InProcessTestCluster Cluster { get; }
    public OrleansGenerationClient Client { get; }

    /// <param name="wrapperFor">A runner wrapper for the silo of the given index (0 = the first), e.g. to inject faults into one silo.</param>
    public static async Task<LoomTestCluster> StartAsync(int silos, LoomOptions options, TimeSpan? stepDelay = null,
        Func<int, IModelRunnerWrapper?>? wrapperFor = null, TimeSpan? firstTokenTimeout = null)
    {
        var builder = new InProcessTestClusterBuilder((short)silos);
        int configured = 0;
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddLoomWorker(options);
            int index = Interlocked.Increment(ref configured) - 1;
            if (wrapperFor?.Invoke(index) is { } w) silo.Services.AddSingleton(w);
            else if (stepDelay is { } d) silo.Services.AddSingleton<IModelRunnerWrapper>(new SlowRunnerWrapper(d));
            silo.Services.AddLogging(l => l.AddFilter("Orleans", LogLevel.Error).AddFilter("Polly", LogLevel.Error));
        });
        builder.ConfigureClient(c =>
        {
            c.ConfigureFailureDetection();
            c.Services.AddLogging(l => l.AddFilter("Orleans", LogLevel.Error));
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        var loom = new LoomTestCluster(cluster, firstTokenTimeout);
        await loom.WaitForWorkersAsync(silos);
        return loom;
    }

    /// <summary>
    /// Until the routers see <paramref name="count"/> workers reporting. Each silo has its own router
    /// with its own view, and a fresh silo's view fills as membership and first reports arrive, so
    /// one router seeing them all is not enough: several reads in a row must (the client's calls
    /// reach the routers of different silos).
    /// </summary>
    public async Task WaitForWorkersAsync(int count)
    {
        var router = Cluster.Client.GetGrain<IRouterGrain>(0);
        int agreeing = 0;
        for (int i = 0; i < 400 && agreeing < 2 * Cluster.Silos.Count; i++)
        {
            agreeing = (await router.GetWorkerStatsAsync()).Count >= count ? agreeing + 1 : 0;
            await Task.Delay(25);
        }
        Assert.Equal(count, (await router.GetWorkerStatsAsync()).Count);
    }

    /// <summary>The worker (engine host) of each active silo, in silo order.</summary>
    public IReadOnlyList<WorkerEngine> Workers =>
        [.. Cluster.Silos.Where(s => s.IsActive).Select(s => s.ServiceProvider.GetRequiredService<WorkerEngine>())];

    public Task<IReadOnlyDictionary<string, WorkerStats>> WorkerStatsAsync() => Cluster.Client.GetGrain<IRouterGrain>(0).GetWorkerStatsAsync();

    /// <summary>Stats straight from each worker (the router's view lags by up to 250 ms).</summary>
    public async Task<Dictionary<string, WorkerStats>> FreshStatsAsync()
    {
        var result = new Dictionary<string, WorkerStats>();
        foreach (var silo in Cluster.Silos)
        {
            var key = silo.SiloAddress.ToParsableString();
            result[key] = await Cluster.Client.GetGrain<IWorkerGrain>(key).GetStatsAsync();
        }
        return result;
    }

    /// <summary>
    /// Until every worker is idle and so are the routers' views of them: a router that still sees a
    /// queue from earlier work rightly sends the next request past its preferred worker, which would
    /// break a test that asserts affinity. Several reads, since the client reaches routers on any silo.
    /// </summary>
    public async Task WaitIdleAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        var router = Cluster.Client.GetGrain<IRouterGrain>(0);
        int quietReads = 0;
        while (quietReads < 2 * Cluster.Silos.Count && DateTime.UtcNow < deadline)
        {
            bool idle = (await FreshStatsAsync()).Values.All(s => s.Running == 0 && s.Waiting == 0)
                && (await router.GetWorkerStatsAsync()).Values.All(s => s.Running == 0 && s.Waiting == 0);
            quietReads = idle ? quietReads + 1 : 0;
            await Task.Delay(idle ? 20 : 100);
        }
        if (quietReads == 0) throw new TimeoutException("the cluster did not become idle");
    }

    public static LoomOptions TinyModel(string dir) => new()
    {
        Model = new() { Path = dir, Name = "tiny" },
        Engine = new() { KvCacheBytes = 8L * 1024 * 1024, Threads = 1, MaxNumSeqs = 16 },
    };

    public static LoomOptions Simulated(double overheadMs, double perTokenMs, int maxNumSeqs) => new()
    {
        Engine = new() { Backend = "simulated", MaxNumSeqs = maxNumSeqs, KvCacheBytes = 16L * 1024 * 1024 },
        Simulated = new() { StepOverheadMs = overheadMs, PerTokenMs = perTokenMs, VocabSize = 256 },
    };

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        try { await Cluster.StopAllSilosAsync(); } catch (Exception) { /* killed silos */ }
        await Cluster.DisposeAsync();
    }

    private sealed class SlowRunnerWrapper(TimeSpan delay) : IModelRunnerWrapper
    {
        public IModelRunner Wrap(IModelRunner inner) => new Slow(inner, delay);

        private sealed class Slow(IModelRunner inner, TimeSpan delay) : IModelRunner
        {
            public ReadOnlySpan<SampleResult> Execute(SchedulerOutput step) { Thread.Sleep(delay); return inner.Execute(step); }
            public void Dispose() => inner.Dispose();
        }
    }
}

/// <summary>The tiny model, generated once per test class.</summary>
public sealed class TinyModelFixture : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("loom-cluster-").FullName;

    public TinyModelFixture() => ModelGenerator.Generate(ModelPresets.Tiny, Dir, new GenerateOptions { Seed = 11 });

    public void Dispose() => Directory.Delete(Dir, true);
}
