using System.Diagnostics;
using Loom.Kernels;

namespace Loom.Benchmarks;

/// <summary>
/// Wraps a backend and charges wall time to each operation, so the `profile` suite can say where
/// a step goes (GEMM vs attention vs the small elementwise ops). Linear is split by output width.
/// </summary>
public sealed class ProfilingBackend(IBackend inner) : IBackend
{
    private readonly Dictionary<string, (double Seconds, long Calls)> _time = new();

    public string Name => inner.Name;
    public bool AcceptsQuantizedWeights => inner.AcceptsQuantizedWeights;
    public IReadOnlyDictionary<string, (double Seconds, long Calls)> Times => _time;
    public void Reset() => _time.Clear();

    private void Charge(string op, long start)
    {
        double s = Stopwatch.GetElapsedTime(start).TotalSeconds;
        _time[op] = _time.TryGetValue(op, out var cur) ? (cur.Seconds + s, cur.Calls + 1) : (s, 1);
    }

    public Tensor Allocate(DType dtype, params int[] shape) => inner.Allocate(dtype, shape);
    public Tensor Upload(WeightView source, DType dtype) => inner.Upload(source, dtype);
    public LinearWeight PrepareLinear(IReadOnlyList<WeightView> parts) => inner.PrepareLinear(parts);
    public KvCache AllocateKvCache(KvCacheSpec spec) => inner.AllocateKvCache(spec);
    public void CopyToHost(Tensor source, Span<float> destination) => inner.CopyToHost(source, destination);
    public void CopyFromHost(ReadOnlySpan<float> source, Tensor destination) => inner.CopyFromHost(source, destination);
    public void Synchronize() => inner.Synchronize();
    public void Dispose() => inner.Dispose();

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.Embedding(table, ids, output); Charge("embedding", t); }
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.RmsNorm(x, weight, eps, output); Charge("rmsnorm", t); }
    public void AddRmsNorm(Tensor x, Tensor residual, Tensor weight, float eps, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.AddRmsNorm(x, residual, weight, eps, output); Charge("add_rmsnorm", t); }
    public void Linear(Tensor x, LinearWeight weight, Tensor? bias, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.Linear(x, weight, bias, output); Charge($"linear N={output.Cols} K={x.Cols} {weight.DType}", t); }
    public void CopyColumns(Tensor source, int columnOffset, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.CopyColumns(source, columnOffset, output); Charge("copy_columns", t); }
    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, float attentionScaling)
    { long t = Stopwatch.GetTimestamp(); inner.Rope(x, headDim, positions, invFreq, attentionScaling); Charge("rope", t); }
    public void SiluAndMul(Tensor gateUp, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.SiluAndMul(gateUp, output); Charge("silu_and_mul", t); }
    public void Add(Tensor a, Tensor b, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.Add(a, b, output); Charge("add", t); }
    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.GatherRows(x, rows, output); Charge("gather_rows", t); }
    public void WriteKv(KvCache cache, int layer, Tensor k, Tensor v, ReadOnlySpan<int> slotMapping)
    { long t = Stopwatch.GetTimestamp(); inner.WriteKv(cache, layer, k, v, slotMapping); Charge("write_kv", t); }
    public void PagedAttention(Tensor q, KvCache cache, int layer, AttentionMetadata meta, int numHeads, float scale, Tensor output)
    { long t = Stopwatch.GetTimestamp(); inner.PagedAttention(q, cache, layer, meta, numHeads, scale, output); Charge("paged_attention", t); }
}
