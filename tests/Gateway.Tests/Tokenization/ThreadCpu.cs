using System.Runtime.InteropServices;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>
/// CPU time of the calling thread (Linux clock_gettime(CLOCK_THREAD_CPUTIME_ID)): unlike wall
/// clock or process CPU time, neither a busy machine nor tests running beside this one move it.
/// </summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out Timespec time);

    public static bool Available => OperatingSystem.IsLinux() && Environment.Is64BitProcess;

    public static TimeSpan Now()
    {
        if (ClockGetTime(ClockThreadCpuTimeId, out var t) != 0) throw new InvalidOperationException("clock_gettime failed");
        return TimeSpan.FromTicks(t.Seconds * TimeSpan.TicksPerSecond + t.Nanoseconds / 100);
    }

    /// <summary>
    /// Runs <paramref name="work"/> on this thread and returns its result and the CPU time it took,
    /// less the time the process spent paused for garbage collection meanwhile: a collection this
    /// thread triggers runs on it, and in a full test run it also scans the other tests' heaps
    /// (0.3 s alone became 2 s), which says nothing about the work measured.
    /// </summary>
    public static (T Result, TimeSpan Cpu) Measure<T>(Func<T> work)
    {
        var pauses = GC.GetTotalPauseDuration();
        var start = Now();
        var result = work();
        var cpu = Now() - start - (GC.GetTotalPauseDuration() - pauses);
        return (result, cpu < TimeSpan.Zero ? TimeSpan.Zero : cpu);
    }
}
