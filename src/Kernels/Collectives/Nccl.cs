using System.Runtime.InteropServices;
using Loom.Kernels.Cuda.Interop;

namespace Loom.Kernels.Collectives;

/// <summary>NCCL's 128-byte unique id: made by rank 0, handed to every rank (in a cluster through a grain).</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
public unsafe struct NcclUniqueId
{
    public const int Bytes = 128;

    private fixed byte _data[Bytes];

    public byte[] ToArray()
    {
        var a = new byte[Bytes];
        fixed (byte* p = _data) new ReadOnlySpan<byte>(p, Bytes).CopyTo(a);
        return a;
    }

    public static NcclUniqueId FromArray(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Bytes) throw new ArgumentException($"an NCCL unique id is {Bytes} bytes, got {bytes.Length}", nameof(bytes));
        var id = default(NcclUniqueId);
        bytes.CopyTo(new Span<byte>(id._data, Bytes));
        return id;
    }
}

/// <summary>A failed NCCL call, named with its ncclResult_t.</summary>
public sealed class NcclException(string call, int result)
    : Exception($"{call} failed: {Nccl.ResultName(result)} ({result})")
{
    public int Result { get; } = result;
}

/// <summary>The NCCL calls tensor parallelism needs, over libnccl.so.2 (found by <see cref="NativeLibraries"/>).</summary>
public static unsafe class Nccl
{
    private const string Lib = NativeLibraries.Nccl;

    public const int Float32 = 7; // ncclFloat32
    public const int Sum = 0;     // ncclSum

    [DllImport(Lib)] public static extern int ncclGetUniqueId(out NcclUniqueId id);
    [DllImport(Lib)] public static extern int ncclCommInitRank(out nint comm, int nranks, NcclUniqueId id, int rank);
    [DllImport(Lib)] public static extern int ncclAllReduce(nint sendbuff, nint recvbuff, nuint count, int datatype, int op, nint comm, nint stream);
    [DllImport(Lib)] public static extern int ncclCommDestroy(nint comm);
    [DllImport(Lib)] public static extern int ncclCommAbort(nint comm);

    public static void Check(int result, string call)
    {
        if (result != 0) throw new NcclException(call, result);
    }

    public static string ResultName(int result) => result switch
    {
        0 => "ncclSuccess",
        1 => "ncclUnhandledCudaError",
        2 => "ncclSystemError",
        3 => "ncclInternalError",
        4 => "ncclInvalidArgument",
        5 => "ncclInvalidUsage",
        6 => "ncclRemoteError",
        7 => "ncclInProgress",
        _ => $"ncclResult_{result}",
    };
}

/// <summary>
/// All-reduce over NCCL for shards on GPUs: one communicator per device, each driven by its own
/// thread with the device's context current. The sum runs in place on the device buffer on the
/// given CUDA stream; the call waits for it so the next kernel sees the result.
/// </summary>
public sealed class NcclCommunicator : ICommunicator
{
    private nint _comm;
    private readonly nint _stream;

    public NcclCommunicator(NcclUniqueId id, int rank, int worldSize, nint stream)
    {
        Rank = rank;
        WorldSize = worldSize;
        _stream = stream;
        Nccl.Check(Nccl.ncclCommInitRank(out _comm, worldSize, id, rank), nameof(Nccl.ncclCommInitRank));
    }

    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>
    /// One communicator per backend of this process, rank = index: rank 0's unique id, then every
    /// rank's ncclCommInitRank at once on its own thread with its device current (the call blocks
    /// until all ranks have joined).
    /// </summary>
    public static NcclCommunicator[] CreateGroup(IReadOnlyList<Cuda.CudaBackend> backends)
    {
        int world = backends.Count;
        Nccl.Check(Nccl.ncclGetUniqueId(out var id), nameof(Nccl.ncclGetUniqueId));
        var comms = new NcclCommunicator[world];
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try
            {
                backends[r].MakeCurrent();
                comms[r] = new NcclCommunicator(id, r, world, backends[r].Stream);
            }
            catch (Exception e) { errors[r] = e; }
        }) { IsBackground = true, Name = $"loom-nccl-init-{r}" }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (errors.FirstOrDefault(e => e is not null) is { } first)
        {
            foreach (var c in comms) c?.Dispose();
            throw first;
        }
        return comms;
    }

    public void AllReduceSum(Tensor tensor)
    {
        if (tensor.DType != DType.F32) throw new ArgumentException($"all-reduce needs an F32 tensor, got {tensor}", nameof(tensor));
        Nccl.Check(Nccl.ncclAllReduce(tensor.Data, tensor.Data, (nuint)tensor.ElementCount, Nccl.Float32, Nccl.Sum, _comm, _stream), nameof(Nccl.ncclAllReduce));
        CuDriver.Check(CuDriver.cuStreamSynchronize(_stream), nameof(CuDriver.cuStreamSynchronize));
    }

    /// <summary>ncclCommAbort: frees the communicator and makes the partners' pending operations fail.</summary>
    public void Abort()
    {
        var comm = Interlocked.Exchange(ref _comm, 0);
        if (comm != 0) Nccl.ncclCommAbort(comm);
    }

    public void Dispose()
    {
        var comm = Interlocked.Exchange(ref _comm, 0);
        if (comm != 0) Nccl.ncclCommDestroy(comm);
    }
}
