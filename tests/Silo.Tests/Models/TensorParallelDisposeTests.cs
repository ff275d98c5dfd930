using System.Collections.Concurrent;
using Loom.Kernels;
using Loom.Kernels.Collectives;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>
/// Teardown order of a tensor-parallel model: every communicator is destroyed before any backend,
/// because on CUDA ncclCommDestroy needs the contexts and streams the backends own.
/// </summary>
public sealed class TensorParallelDisposeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-tp-dispose-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void CommunicatorsAreDestroyedBeforeTheBackends()
    {
        var preset = ModelPresets.Tiny with { Name = "tiny-tp-dispose", Heads = 8, KvHeads = 4, HeadDim = 8 };
        ModelGenerator.Generate(preset, _dir, new GenerateOptions { Seed = 3 });
        var events = new ConcurrentQueue<string>();
        var group = InProcessCommunicator.CreateGroup(2);
        ICommunicator[] comms = [new RecordingCommunicator(group[0], events), new RecordingCommunicator(group[1], events)];
        var model = TensorParallelModel.Load(_dir, 2, r => new RecordingBackend(new CpuBackend(1), $"backend {r}", events), numBlocks: 8, blockSize: 4,
            communicators: _ => comms);
        model.Dispose();

        var order = events.ToList();
        Assert.Equal(4, order.Count);
        Assert.All(order.Take(2), e => Assert.StartsWith("comm", e));
        Assert.All(order.Skip(2), e => Assert.StartsWith("backend", e));
    }

    [Fact]
    public void AFailedLoadAlsoDestroysTheCommunicatorsFirst()
    {
        var events = new ConcurrentQueue<string>();
        var group = InProcessCommunicator.CreateGroup(2);
        ICommunicator[] comms = [new RecordingCommunicator(group[0], events), new RecordingCommunicator(group[1], events)];
        // No model in the folder: the load fails after the backends exist.
        Assert.ThrowsAny<Exception>(() => TensorParallelModel.Load(_dir, 2, r => new RecordingBackend(new CpuBackend(1), $"backend {r}", events), 8, 4,
            communicators: _ => comms));
        var order = events.ToList();
        Assert.Equal(4, order.Count);
        Assert.All(order.Take(2), e => Assert.StartsWith("comm", e));
    }

    private sealed class RecordingCommunicator(ICommunicator inner, ConcurrentQueue<string> events) : ICommunicator
    {
        public int Rank => inner.Rank;
        public int WorldSize => inner.WorldSize;
        public void AllReduceSum(Tensor tensor) => inner.AllReduceSum(tensor);
        public void Abort() => inner.Abort();

        public void Dispose()
        {
            events.Enqueue($"comm {Rank}");
            inner.Dispose();
        }
    }
}

/// <summary>A backend that forwards every op to another and reports its disposal (then runs <paramref name="onDispose"/>).</summary>
internal sealed class RecordingBackend(IBackend inner, string name, ConcurrentQueue<string> events, Action? onDispose = null) : IBackend
{
    public string Name => inner.Name;
    public Tensor Allocate(DType dtype, params int[] shape) => inner.Allocate(dtype, shape);
    public Tensor Upload(WeightView source, DType dtype) => inner.Upload(source, dtype);
    public LinearWeight PrepareLinear(IReadOnlyList<WeightView> parts) => inner.PrepareLinear(parts);
    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor output) => inner.Embedding(table, ids, output);
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output) => inner.RmsNorm(x, weight, eps, output);
    public void AddRmsNorm(Tensor x, Tensor residual, Tensor weight, float eps, Tensor output) => inner.AddRmsNorm(x, residual, weight, eps, output);
    public void Linear(Tensor x, LinearWeight weight, Tensor? bias, Tensor output) => inner.Linear(x, weight, bias, output);
    public void CopyColumns(Tensor source, int columnOffset, Tensor output) => inner.CopyColumns(source, columnOffset, output);
    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, float attentionScaling) =>
        inner.Rope(x, headDim, positions, invFreq, attentionScaling);
    public void SiluAndMul(Tensor gateUp, Tensor output) => inner.SiluAndMul(gateUp, output);
    public void Add(Tensor a, Tensor b, Tensor output) => inner.Add(a, b, output);
    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor output) => inner.GatherRows(x, rows, output);
    public KvCache AllocateKvCache(KvCacheSpec spec) => inner.AllocateKvCache(spec);
    public void WriteKv(KvCache cache, int layer, Tensor k, Tensor v, ReadOnlySpan<int> slotMapping) => inner.WriteKv(cache, layer, k, v, slotMapping);
    public void PagedAttention(Tensor q, KvCache cache, int layer, AttentionMetadata meta, int numHeads, float scale, Tensor output) =>
        inner.PagedAttention(q, cache, layer, meta, numHeads, scale, output);
    public void CopyToHost(Tensor source, Span<float> destination) => inner.CopyToHost(source, destination);
    public void CopyFromHost(ReadOnlySpan<float> source, Tensor destination) => inner.CopyFromHost(source, destination);
    public void Synchronize() => inner.Synchronize();

    public void Dispose()
    {
        events.Enqueue(name);
        inner.Dispose();
        onDispose?.Invoke();
    }
}
