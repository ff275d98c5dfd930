using System.Diagnostics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu;

/// <summary>
/// A persistent fork-join pool: the calling thread plus <c>threads - 1</c> spinning workers.
/// A dispatch costs ~0.1 µs while workers spin (Parallel.For costs µs, and tens of µs after
/// idling), which matters at ~200 small GEMMs per decode step. Workers park after an idle
/// period because a spinning worker steals a core from everything else on the box.
/// </summary>
/// <remarks>
/// Job state is one 64-bit word (generation | item count | next item) so a claim is a single
/// CAS that can only succeed for items of the generation the worker saw; that makes it safe for
/// a late or freshly woken worker to race a caller that has already moved on. The caller never
/// waits for a worker to wake up: it just claims the items itself.
/// </remarks>
public sealed unsafe class CpuThreadPool : IDisposable
{
    /// <summary>Most items one dispatch may carry (20 bits of the state word).</summary>
    public const int MaxItems = (1 << 20) - 1;

    private const int NextBits = 20;
    private const int CountShift = 20;
    private const int GenShift = 40;
    private const long FieldMask = (1L << 20) - 1;
    // 23 bits keeps the word positive, so an arithmetic shift reads the generation back intact.
    private const long GenMask = (1L << 23) - 1;

    private readonly Thread[] _workers;
    private readonly object _parkLock = new();
    private readonly long _idleTicks;

    private long _state;
    private delegate*<void*, int, int, void> _body;
    private void* _context;
    private int _done;
    private int _busy;
    private int _parked;
    private Exception? _error;
    private volatile bool _stop;

    /// <param name="threads">Total threads including the caller; 0 = processor count.</param>
    /// <param name="idleParkMicroseconds">How long a worker spins with no work before parking.</param>
    public CpuThreadPool(int threads = 0, int idleParkMicroseconds = 1500)
    {
        if (threads <= 0) threads = Environment.ProcessorCount;
        ThreadCount = threads;
        _idleTicks = Math.Max(1, (long)idleParkMicroseconds * Stopwatch.Frequency / 1_000_000);
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            int index = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(index))
            {
                IsBackground = true,
                Name = $"loom-cpu-{index}",
            };
            _workers[i].Start();
        }
    }

    /// <summary>Threads that execute items, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>Workers whose OS thread is still running (0 after <see cref="Dispose"/>).</summary>
    public int LiveWorkers => _workers.Count(w => w.IsAlive);

    /// <summary>
    /// Runs <c>body(context, item, threadIndex)</c> for item in [0, count) and returns when all are
    /// done. threadIndex is in [0, ThreadCount) and unique among concurrently running items.
    /// <paramref name="context"/> may point at the caller's stack: it outlives the call.
    /// </summary>
    public void For(int count, delegate*<void*, int, int, void> body, void* context)
    {
        if (count <= 0) return;
        if (count > MaxItems) throw new ArgumentOutOfRangeException(nameof(count), $"at most {MaxItems} items per dispatch");

        // Nested or concurrent callers run inline rather than corrupt the shared job slot.
        if (_workers.Length == 0 || count == 1 || _stop || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int i = 0; i < count; i++) body(context, i, 0);
            return;
        }

        try
        {
            _body = body;
            _context = context;
            _error = null;
            Volatile.Write(ref _done, 0);
            long gen = ((_state >> GenShift) + 1) & GenMask;
            // A full fence: parked workers publish _parked and then read _state, we do the reverse.
            Interlocked.Exchange(ref _state, (gen << GenShift) | ((long)count << CountShift));
            if (Volatile.Read(ref _parked) > 0)
            {
                lock (_parkLock) Monitor.PulseAll(_parkLock);
            }

            RunItems(gen, 0);
            while (Volatile.Read(ref _done) != count) Pause();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }

        var error = _error;
        if (error is not null)
        {
            _error = null;
            throw new AggregateException("a parallel kernel item failed", error);
        }
    }

    private void RunItems(long gen, int threadIndex)
    {
        while (true)
        {
            long s = Volatile.Read(ref _state);
            if ((s >> GenShift) != gen) return;
            int next = (int)(s & FieldMask);
            int count = (int)((s >> CountShift) & FieldMask);
            if (next >= count) return;
            if (Interlocked.CompareExchange(ref _state, s + 1, s) != s) continue;

            // The item is ours and unfinished, so the caller cannot have replaced body/context.
            try
            {
                _body(_context, next, threadIndex);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            finally
            {
                Interlocked.Increment(ref _done);
            }
        }
    }

    private void WorkerLoop(int threadIndex)
    {
        long seen = Volatile.Read(ref _state) >> GenShift;
        while (true)
        {
            long idleSince = Stopwatch.GetTimestamp();
            int spins = 0;
            long gen;
            while ((gen = Volatile.Read(ref _state) >> GenShift) == seen)
            {
                if (_stop) return;
                Pause();
                if ((++spins & 255) == 0 && Stopwatch.GetTimestamp() - idleSince > _idleTicks)
                {
                    Park(seen);
                    idleSince = Stopwatch.GetTimestamp();
                }
            }

            seen = gen;
            RunItems(gen, threadIndex);
        }
    }

    private void Park(long seen)
    {
        lock (_parkLock)
        {
            Interlocked.Increment(ref _parked);
            while (!_stop && (Volatile.Read(ref _state) >> GenShift) == seen) Monitor.Wait(_parkLock);
            Interlocked.Decrement(ref _parked);
        }
    }

    private static void Pause()
    {
        if (X86Base.IsSupported) X86Base.Pause();
        else Thread.SpinWait(1);
    }

    public void Dispose()
    {
        if (_stop) return;
        _stop = true;
        lock (_parkLock) Monitor.PulseAll(_parkLock);
        foreach (var w in _workers) w.Join();
    }
}
