using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>/v1/models, /tokenize, /detokenize, /health, /version and /metrics.</summary>
public sealed class UtilityEndpointTests : IAsyncLifetime
{
    private LoomTestServer _server = null!;
    public async Task InitializeAsync() => _server = await LoomTestServer.StartAsync(o => o.ServedModelName = "loom-test");
    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Models_UsesTheServedName_AndAcceptsTheModelsOwnNameToo()
    {
        var r = JsonDocument.Parse(await _server.Http.GetStringAsync("v1/models")).RootElement;
        Assert.Equal("list", r.GetProperty("object").GetString());
        var card = Assert.Single(r.GetProperty("data").EnumerateArray());
        Assert.Equal("loom-test", card.GetProperty("id").GetString());
        Assert.Equal("model", card.GetProperty("object").GetString());
        Assert.Equal(256, card.GetProperty("max_model_len").GetInt32());
        await _server.PostOkAsync("v1/completions", """{"model":"loom-test","prompt":"a","max_tokens":1}""");
        var c = await _server.PostOkAsync("v1/completions", """{"model":"test-model","prompt":"a","max_tokens":1}""");
        Assert.Equal("loom-test", c.GetProperty("model").GetString());
        using var missing = await _server.Http.GetAsync("v1/models/other");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Tokenize_Detokenize_RoundTrip()
    {
        var t = await _server.PostOkAsync("tokenize", """{"prompt":"hé<|im_end|>","return_token_strs":true}""");
        Assert.Equal(4, t.GetProperty("count").GetInt32());
        Assert.Equal(256, t.GetProperty("max_model_len").GetInt32());
        int[] ids = [.. t.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32())];
        Assert.Equal([104, 0xC3, 0xA9, 258], ids);
        Assert.Equal("<|im_end|>", t.GetProperty("token_strs")[3].GetString());
        var d = await _server.PostOkAsync("detokenize", $$"""{"tokens":[{{string.Join(",", ids)}}]}""");
        Assert.Equal("hé<|im_end|>", d.GetProperty("prompt").GetString());

        var chat = await _server.PostOkAsync("tokenize", """{"messages":[{"role":"user","content":"x"}]}""");
        Assert.Equal(20, chat.GetProperty("count").GetInt32()); // same as the chat endpoint's prompt
    }

    [Fact]
    public async Task Health_And_Version()
    {
        using var ok = await _server.Http.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        _server.Cluster.Stats = null; // the cluster stops answering
        using var down = await _server.Http.GetAsync("health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
        ErrorShape.Assert(await down.Content.ReadAsStringAsync(), null);
        var v = JsonDocument.Parse(await _server.Http.GetStringAsync("version")).RootElement;
        Assert.False(string.IsNullOrEmpty(v.GetProperty("version").GetString()));
        Assert.False(v.TryGetProperty("workers", out _)); // nobody answered: no device list, still a version

        _server.Cluster.Stats = () =>
        [
            new WorkerStats(0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, Device: "cpu", Isa: "avx2"),
            new WorkerStats(0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, Device: "cpu", Isa: "avx2"),
            new WorkerStats(0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, Device: "cpu", Isa: "avx512"),
        ];
        v = JsonDocument.Parse(await _server.Http.GetStringAsync("version")).RootElement;
        var workers = v.GetProperty("workers").EnumerateArray().Select(w => (w.GetProperty("device").GetString(), w.GetProperty("isa").GetString(), w.GetProperty("count").GetInt32())).ToList();
        Assert.Equal([("cpu", "avx2", 2), ("cpu", "avx512", 1)], workers);
    }

    // One exposition line: a comment, or name{labels} value.
    private static readonly Regex SampleLine = new(
        @"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>([a-zA-Z_][a-zA-Z0-9_]*=""([^""\\]|\\.)*"",?)*)\})? (?<value>[-+]?(\d+(\.\d+)?([eE][-+]?\d+)?|Inf|NaN))$");

    [Fact]
    public async Task Metrics_ParseAsPrometheusText_WithVllmNames()
    {
        _server.Cluster.Stats = () =>
        [
            new WorkerStats(2, 1, 100, 60, 40, 5, 0.4, 1000, 250, 3, 0, 0, Device: "cpu", Isa: "avx2", StructuredCacheBytes: 1000),
            new WorkerStats(1, 4, 300, 240, 60, 0, 0.2, 500, 100, 2, 0, 0, Device: "cpu", Isa: "avx2", StructuredCacheBytes: 24),
        ];
        await _server.PostOkAsync("v1/completions", """{"prompt":"ab","max_tokens":3}""");
        await _server.PostOkAsync("v1/completions", """{"prompt":"a","max_tokens":50}""");
        using var resp = await _server.Http.GetAsync("metrics");
        Assert.StartsWith("text/plain", resp.Content.Headers.ContentType!.ToString());
        string text = await resp.Content.ReadAsStringAsync();

        var samples = new Dictionary<string, double>();
        var types = new Dictionary<string, string>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal)) { var p = line.Split(' '); types[p[2]] = p[3]; continue; }
            if (line.StartsWith('#')) { Assert.StartsWith("# HELP ", line); continue; }
            var m = SampleLine.Match(line);
            Assert.True(m.Success, $"not a Prometheus sample line: {line}");
            samples[line[..line.LastIndexOf(' ')]] = double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
        }
        const string l = "model_name=\"loom-test\"";
        Assert.Equal(3, samples[$"vllm:num_requests_running{{{l}}}"]);
        Assert.Equal(5, samples[$"vllm:num_requests_waiting{{{l}}}"]);
        Assert.Equal(2, samples[$"loom:worker_info{{{l},device=\"cpu\",isa=\"avx2\"}}"]);
        Assert.Equal(0.25, samples[$"vllm:kv_cache_usage_perc{{{l}}}"], 6);
        Assert.Equal(5, samples[$"vllm:num_preemptions_total{{{l}}}"]);
        Assert.Equal(1500, samples[$"vllm:prefix_cache_queries_total{{{l}}}"]);
        Assert.Equal(350, samples[$"vllm:prefix_cache_hits_total{{{l}}}"]);
        Assert.Equal(1024, samples[$"loom:structured_cache_bytes{{{l}}}"]);
        Assert.Equal("gauge", types["loom:structured_cache_bytes"]);
        Assert.Equal(3, samples[$"vllm:prompt_tokens_total{{{l}}}"]);
        Assert.Equal(3 + 14, samples[$"vllm:generation_tokens_total{{{l}}}"]);
        Assert.Equal(1, samples[$"vllm:request_success_total{{{l},finished_reason=\"length\"}}"]);
        Assert.Equal(1, samples[$"vllm:request_success_total{{{l},finished_reason=\"stop\"}}"]);
        Assert.Equal(2, samples[$"vllm:time_to_first_token_seconds_count{{{l}}}"]);
        Assert.Equal(2, samples[$"vllm:time_to_first_token_seconds_bucket{{{l},le=\"+Inf\"}}"]);
        Assert.Equal(2 + 13, samples[$"vllm:inter_token_latency_seconds_count{{{l}}}"]);
        Assert.Equal(2, samples[$"vllm:e2e_request_latency_seconds_count{{{l}}}"]);
        Assert.Equal("histogram", types["vllm:e2e_request_latency_seconds"]);
        Assert.Equal("counter", types["vllm:prompt_tokens_total"]);
        Assert.Equal("gauge", types["vllm:kv_cache_usage_perc"]);

        // Buckets are cumulative and end at the count.
        var buckets = samples.Where(kv => kv.Key.StartsWith("vllm:inter_token_latency_seconds_bucket", StringComparison.Ordinal)).Select(kv => kv.Value).ToList();
        Assert.Equal(buckets.Order(), buckets);
    }
}
