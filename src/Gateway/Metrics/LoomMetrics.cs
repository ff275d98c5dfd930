using System.Collections.Concurrent;
using System.Text;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.Metrics;

/// <summary>
/// The gateway's Prometheus metrics under vLLM's names, so vLLM's Grafana dashboards work
/// unchanged. Latencies and token counts are measured here, where the client sees them; queue and
/// KV-cache state come from the workers (<see cref="WorkerStats"/>, summed over workers) at scrape
/// time. Hand-written exposition rather than a library: a dozen series need no dependency.
/// </summary>
public sealed class LoomMetrics
{
    // vLLM's bucket boundaries (vllm/v1/metrics/loggers.py), with finer low ITL buckets for fast models.
    private static readonly double[] TtftBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
    private static readonly double[] ItlBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] E2eBuckets = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    private long _promptTokens;
    private long _generationTokens;
    private long _inFlight;
    private readonly ConcurrentDictionary<string, long> _success = new();
    private readonly ConcurrentDictionary<int, long> _httpErrors = new();

    public Histogram TimeToFirstToken { get; } = new(TtftBuckets);
    public Histogram InterTokenLatency { get; } = new(ItlBuckets);
    public Histogram E2eLatency { get; } = new(E2eBuckets);

    public void AddPromptTokens(int n) => Interlocked.Add(ref _promptTokens, n);
    public void AddGenerationToken() => Interlocked.Increment(ref _generationTokens);
    public void RequestStarted() => Interlocked.Increment(ref _inFlight);
    public void RequestEnded() => Interlocked.Decrement(ref _inFlight);

    /// <summary>One finished sequence; vLLM counts per sequence with finished_reason stop|length|abort.</summary>
    public void SequenceFinished(string reason) => _success.AddOrUpdate(reason, 1, (_, v) => v + 1);

    public void HttpError(int status) => _httpErrors.AddOrUpdate(status, 1, (_, v) => v + 1);

    public long PromptTokens => Interlocked.Read(ref _promptTokens);
    public long GenerationTokens => Interlocked.Read(ref _generationTokens);

    /// <summary>The exposition text; <paramref name="workers"/> is null when the cluster could not be asked.</summary>
    public string Render(string modelName, IReadOnlyList<WorkerStats>? workers)
    {
        var sb = new StringBuilder(8192);
        string l = $"model_name=\"{Prometheus.EscapeLabel(modelName)}\"";

        if (workers is not null)
        {
            Gauge(sb, "vllm:num_requests_running", "Number of requests in model execution batches.", l, workers.Sum(w => w.Running));
            Gauge(sb, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", l, workers.Sum(w => w.Waiting));
            long total = workers.Sum(w => (long)w.TotalBlocks);
            double usage = total > 0 ? workers.Sum(w => (double)w.UsedBlocks) / total
                : workers.Count > 0 ? workers.Average(w => w.KvUsage) : 0;
            Gauge(sb, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", l, usage);
            Counter(sb, "vllm:num_preemptions_total", "Cumulative number of preemptions from the engine.", l, workers.Sum(w => w.Preemptions));
            Counter(sb, "vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", l, workers.Sum(w => w.PrefixCacheQueries));
            Counter(sb, "vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", l, workers.Sum(w => w.PrefixCacheHits));
            Gauge(sb, "loom:structured_cache_bytes", "Bytes the workers' compiled structured-output constraints keep (automata, states, masks).", l,
                workers.Sum(w => w.StructuredCacheBytes));
        }
        Gauge(sb, "loom:workers", "Workers that answered the stats query at scrape time.", l, workers?.Count ?? 0);
        if (workers is { Count: > 0 })
        {
            // Which hardware and kernels serve: a silo on an AVX2 host next to an AVX-512 one shows up here.
            Prometheus.Header(sb, "loom:worker_info", "gauge", "Workers by device and CPU kernel instruction set (isa is empty off the CPU).");
            foreach (var g in workers.GroupBy(w => (w.Device, w.Isa)).OrderBy(g => g.Key))
                Prometheus.Sample(sb, "loom:worker_info", $"{l},device=\"{Prometheus.EscapeLabel(g.Key.Device)}\",isa=\"{Prometheus.EscapeLabel(g.Key.Isa)}\"", g.Count());
        }
        Gauge(sb, "loom:gateway_requests_in_flight", "Generation requests this gateway is serving now.", l, Interlocked.Read(ref _inFlight));

        Counter(sb, "vllm:prompt_tokens_total", "Number of prefill tokens processed.", l, PromptTokens);
        Counter(sb, "vllm:generation_tokens_total", "Number of generation tokens processed.", l, GenerationTokens);

        Prometheus.Header(sb, "vllm:request_success_total", "counter", "Count of successfully processed requests.");
        foreach (var reason in new[] { "stop", "length", "abort" })
            Prometheus.Sample(sb, "vllm:request_success_total", $"{l},finished_reason=\"{reason}\"", _success.GetValueOrDefault(reason));

        Prometheus.Header(sb, "loom:http_errors_total", "counter", "Error responses sent, by HTTP status.");
        foreach (var (status, n) in _httpErrors.OrderBy(kv => kv.Key))
            Prometheus.Sample(sb, "loom:http_errors_total", $"{l},status=\"{status}\"", n);

        Prometheus.Header(sb, "vllm:time_to_first_token_seconds", "histogram", "Histogram of time to first token in seconds.");
        TimeToFirstToken.WriteTo(sb, "vllm:time_to_first_token_seconds", l);
        Prometheus.Header(sb, "vllm:inter_token_latency_seconds", "histogram", "Histogram of inter-token latency in seconds.");
        InterTokenLatency.WriteTo(sb, "vllm:inter_token_latency_seconds", l);
        Prometheus.Header(sb, "vllm:e2e_request_latency_seconds", "histogram", "Histogram of e2e request latency in seconds.");
        E2eLatency.WriteTo(sb, "vllm:e2e_request_latency_seconds", l);
        return sb.ToString();
    }

    private static void Gauge(StringBuilder sb, string name, string help, string labels, double v)
    {
        Prometheus.Header(sb, name, "gauge", help);
        Prometheus.Sample(sb, name, labels, v);
    }

    private static void Counter(StringBuilder sb, string name, string help, string labels, double v)
    {
        Prometheus.Header(sb, name, "counter", help);
        Prometheus.Sample(sb, name, labels, v);
    }
}
