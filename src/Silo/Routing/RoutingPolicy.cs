using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Loom.Silo.Routing;

/// <summary>What the policy knows of one worker: its last load report plus requests routed to it since.</summary>
/// <remarks>MaxNumSeqs is the worker's batch limit (0 = unknown): requests beyond it would queue.</remarks>
public readonly record struct WorkerLoad(string Key, int Running, int Waiting, int FreeBlocks, double KvUsage, int Pending, int MaxNumSeqs = 0);

/// <summary>
/// Where a request goes. Prefix affinity first: rendezvous (highest-random-weight) hashing of the
/// prompt's first full KV blocks, so prompts that share them land on the worker that has them
/// cached, and only 1/N of the keys move when a worker joins or leaves. Least load second: when
/// the preferred worker is saturated, or the prompt has no full block, the least loaded worker wins.
/// Pure and deterministic: the same inputs pick the same worker on every gateway.
/// </summary>
/// <param name="blockSize">The engine's KV block size: a block is what the prefix cache shares.</param>
/// <param name="affinityBlocks">How many leading full blocks make the affinity key. Fewer blocks
/// group more prompts (a 32-token shared system prompt is enough at 2); more blocks spread them.</param>
/// <param name="pendingLimit">Requests routed since the worker's last report beyond which it counts as saturated.</param>
/// <param name="kvSaturation">KV usage at or above which a worker counts as saturated.</param>
public sealed class RoutingPolicy(int blockSize = 16, int affinityBlocks = 2, int pendingLimit = 16, double kvSaturation = 0.9)
{
    public int BlockSize { get; } = blockSize > 0 ? blockSize : throw new ArgumentOutOfRangeException(nameof(blockSize));

    /// <summary>
    /// A worker that already queues (waiting &gt; 0), has nearly no KV left, was just sent many
    /// requests, or whose batch is full counting what was routed to it since its last report.
    /// </summary>
    public bool IsSaturated(in WorkerLoad w) => w.Waiting > 0 || w.KvUsage >= kvSaturation || w.Pending >= pendingLimit
        || w.MaxNumSeqs > 0 && w.Running + w.Pending >= w.MaxNumSeqs;

    /// <summary>The worker for <paramref name="prompt"/>, or null when <paramref name="workers"/> (less <paramref name="exclude"/>) is empty.</summary>
    public string? Pick(IReadOnlyList<WorkerLoad> workers, IReadOnlyList<int> prompt, IReadOnlyCollection<string>? exclude = null)
    {
        var candidates = exclude is { Count: > 0 } ? workers.Where(w => !exclude.Contains(w.Key)).ToList() : workers;
        if (candidates.Count == 0) return null;
        ulong? key = AffinityKey(prompt);
        if (key is { } k)
        {
            var preferred = Preferred(candidates, k);
            if (!IsSaturated(preferred)) return preferred.Key;
        }
        // Unsaturated workers first; only when all are saturated does the request queue somewhere.
        var open = candidates.Where(w => !IsSaturated(w)).ToList();
        return LeastLoaded(open.Count > 0 ? open : candidates, key ?? 0).Key;
    }

    /// <summary>The hash of the prompt's first full blocks (at most affinityBlocks of them), or null when it has none.</summary>
    public ulong? AffinityKey(IReadOnlyList<int> prompt)
    {
        int blocks = Math.Min(prompt.Count / BlockSize, affinityBlocks);
        if (blocks == 0) return null;
        int n = blocks * BlockSize;
        Span<int> tokens = n <= 1024 ? stackalloc int[n] : new int[n];
        for (int i = 0; i < n; i++) tokens[i] = prompt[i];
        return XxHash64.HashToUInt64(MemoryMarshal.AsBytes((ReadOnlySpan<int>)tokens));
    }

    /// <summary>Rendezvous hashing: the worker with the highest weight(key, worker) wins.</summary>
    public static WorkerLoad Preferred(IReadOnlyList<WorkerLoad> workers, ulong key)
    {
        var best = workers[0];
        ulong bestWeight = Weight(key, best.Key);
        for (int i = 1; i < workers.Count; i++)
        {
            ulong w = Weight(key, workers[i].Key);
            if (w > bestWeight || w == bestWeight && string.CompareOrdinal(workers[i].Key, best.Key) < 0) (best, bestWeight) = (workers[i], w);
        }
        return best;
    }

    /// <summary>Fewest queued, then fewest in the batch (running + just routed), then most free KV; ties by rendezvous weight.</summary>
    private static WorkerLoad LeastLoaded(IReadOnlyList<WorkerLoad> workers, ulong key) =>
        workers.OrderBy(w => w.Waiting)
            .ThenBy(w => w.Running + w.Pending)
            .ThenByDescending(w => w.FreeBlocks)
            .ThenByDescending(w => Weight(key, w.Key))
            .First();

    public static ulong Weight(ulong key, string worker)
    {
        // SplitMix64 of (key xor the worker's stable hash): string.GetHashCode differs per process.
        return Models.SplitMix64.Mix(key ^ XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(worker)));
    }
}
