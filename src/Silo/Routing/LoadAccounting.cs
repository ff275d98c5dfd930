using Loom.Grains.Abstractions;

namespace Loom.Silo.Routing;

/// <summary>
/// How a worker's load is estimated, in one place: what the worker reports (its engine's last
/// snapshot plus requests that arrived during the step) and what a router makes of a report
/// between refreshes (its own picks since, and requests that finished since).
/// </summary>
public static class LoadAccounting
{
    /// <summary>
    /// The engine's stats are a snapshot from the end of its last step, so requests submitted during
    /// a step are missing from them; a router that trusted that would send a full worker more work
    /// (on a 50 ms step that skewed simulated workers by a third). Those requests are counted as the
    /// next step will: in the batch while it has room, waiting beyond it.
    /// </summary>
    public static WorkerStats WithUnadmitted(WorkerStats s, int sequencesInFlight)
    {
        int unadmitted = sequencesInFlight - s.Running - s.Waiting;
        if (unadmitted <= 0) return s;
        int room = s.Waiting > 0 ? 0 : s.MaxNumSeqs > 0 ? Math.Max(0, s.MaxNumSeqs - s.Running) : unadmitted;
        int join = Math.Min(unadmitted, room);
        return s with { Running = s.Running + join, Waiting = s.Waiting + unadmitted - join };
    }

    /// <summary>
    /// A router's view of a worker: its last report, less the requests that finished since (their
    /// batch slots are free now), plus the picks it has routed there since (<paramref name="pending"/>).
    /// </summary>
    public static WorkerLoad Effective(string key, WorkerStats s, int pending, int released) =>
        new(key, Math.Max(0, s.Running - released), s.Waiting, s.FreeBlocks, s.KvUsage, pending, s.MaxNumSeqs);
}
