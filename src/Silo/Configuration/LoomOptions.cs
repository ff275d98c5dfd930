using Microsoft.Extensions.Configuration;

namespace Loom.Silo.Configuration;

/// <summary>
/// Every setting of the silo and the gateway, bound from the YAML file, LOOM_* environment
/// variables and command-line switches. Keys are snake_case as the YAML and the Helm chart spell
/// them (<c>engine.block_size</c>, env <c>LOOM_ENGINE__BLOCK_SIZE</c>, switch <c>--engine:block_size=32</c>).
/// </summary>
public sealed class LoomOptions
{
    [ConfigurationKeyName("model")] public ModelSection Model { get; set; } = new();

    /// <summary>auto | cpu | cuda.</summary>
    [ConfigurationKeyName("device")] public string Device { get; set; } = "auto";

    [ConfigurationKeyName("engine")] public EngineSection Engine { get; set; } = new();
    [ConfigurationKeyName("simulated")] public SimulatedSection Simulated { get; set; } = new();
    [ConfigurationKeyName("cluster")] public ClusterSection Cluster { get; set; } = new();
    [ConfigurationKeyName("gateway")] public GatewaySection Gateway { get; set; } = new();

    public sealed class ModelSection
    {
        /// <summary>Hugging Face model folder; empty = the built-in demo model.</summary>
        [ConfigurationKeyName("path")] public string Path { get; set; } = "";

        /// <summary>The name clients use (OpenAI "model"); empty = the folder's name.</summary>
        [ConfigurationKeyName("name")] public string Name { get; set; } = "";

        /// <summary>auto (the file's dtype); conversions at load are not implemented yet.</summary>
        [ConfigurationKeyName("dtype")] public string DType { get; set; } = "auto";

        /// <summary>Tool-call format: hermes, llama3_json or mistral; empty = chosen from the architecture and chat template.</summary>
        [ConfigurationKeyName("tool_call_parser")] public string ToolCallParser { get; set; } = "";
    }

    public sealed class EngineSection
    {
        [ConfigurationKeyName("block_size")] public int BlockSize { get; set; } = 16;
        [ConfigurationKeyName("max_num_seqs")] public int MaxNumSeqs { get; set; } = 64;

        /// <summary>Sequences a worker queues beyond its batch; past it the worker refuses and, once every worker has, the gateway answers 429.</summary>
        [ConfigurationKeyName("max_waiting")] public int MaxWaiting { get; set; } = 256;

        /// <summary>Failed engine steps in a row after which the worker is sick: unready, refusing work, its requests failed over.</summary>
        [ConfigurationKeyName("max_consecutive_step_failures")] public int MaxConsecutiveStepFailures { get; set; } = 3;
        [ConfigurationKeyName("max_num_batched_tokens")] public int MaxNumBatchedTokens { get; set; } = 512;
        [ConfigurationKeyName("max_model_len")] public int MaxModelLen { get; set; }
        [ConfigurationKeyName("kv_cache_bytes")] public long KvCacheBytes { get; set; } = 256L * 1024 * 1024;
        [ConfigurationKeyName("gpu_memory_utilization")] public double GpuMemoryUtilization { get; set; } = 0.9;
        /// <summary>auto (bf16 for bf16/f16 checkpoints, else f32) | bf16 | f32.</summary>
        [ConfigurationKeyName("kv_cache_dtype")] public string KvCacheDType { get; set; } = "auto";
        /// <summary>auto (on the GPU when the backend samples there), host, or device: see EngineOptions.Sampling.</summary>
        /// <summary>Shards of one model in this silo (vLLM's tensor_parallel_size): GPUs 0..n-1 over NCCL, or CPU shards.</summary>
        [ConfigurationKeyName("tensor_parallel_size")] public int TensorParallelSize { get; set; } = 1;

        [ConfigurationKeyName("sampling")] public string Sampling { get; set; } = "auto";

        [ConfigurationKeyName("enable_prefix_caching")] public bool EnablePrefixCaching { get; set; } = true;

        /// <summary>CPU threads for the kernels; 0 = all cores.</summary>
        [ConfigurationKeyName("threads")] public int Threads { get; set; }

        /// <summary>CPU kernels: auto (the best this CPU runs) | avx512 | avx2 | neon | portable; forcing one the CPU lacks fails at start-up.</summary>
        [ConfigurationKeyName("cpu_isa")] public string CpuIsa { get; set; } = "auto";

        /// <summary>model (run the model) | simulated (a cost model, no compute).</summary>
        [ConfigurationKeyName("backend")] public string Backend { get; set; } = "model";
    }

    public sealed class SimulatedSection
    {
        [ConfigurationKeyName("step_overhead_ms")] public double StepOverheadMs { get; set; } = 5;
        [ConfigurationKeyName("per_token_ms")] public double PerTokenMs { get; set; } = 0.05;
        [ConfigurationKeyName("vocab_size")] public int VocabSize { get; set; } = 32000;

        /// <summary>Load drills: the probability that a simulated step throws (the engine's fault containment then acts).</summary>
        [ConfigurationKeyName("step_fault_rate")] public double StepFaultRate { get; set; }

        /// <summary>Load drills: a prompt holding this token id makes every step that runs it throw; -1 = none.</summary>
        [ConfigurationKeyName("poison_token_id")] public int PoisonTokenId { get; set; } = -1;
    }

    public sealed class ClusterSection
    {
        /// <summary>StackExchange.Redis connection string; empty = no cluster (single process, localhost clustering).</summary>
        [ConfigurationKeyName("redis")] public string Redis { get; set; } = "";
        [ConfigurationKeyName("cluster_id")] public string ClusterId { get; set; } = "loom";
        [ConfigurationKeyName("service_id")] public string ServiceId { get; set; } = "loom";
        [ConfigurationKeyName("silo_port")] public int SiloPort { get; set; } = 11111;
        [ConfigurationKeyName("gateway_port")] public int GatewayPort { get; set; } = 30000;

        /// <summary>The IP other silos reach this one at; empty = the first non-loopback address (or loopback).</summary>
        [ConfigurationKeyName("advertised_ip")] public string AdvertisedIp { get; set; } = "";

        /// <summary>The silo's readiness port (GET /health: 200 once the model is loaded); 0 = none.</summary>
        [ConfigurationKeyName("health_port")] public int HealthPort { get; set; } = 8080;
    }

    public sealed class GatewaySection
    {
        /// <summary>The address the HTTP and gRPC ports listen on: 0.0.0.0 (every interface), localhost, or an IP.</summary>
        [ConfigurationKeyName("host")] public string Host { get; set; } = "0.0.0.0";
        [ConfigurationKeyName("http_port")] public int HttpPort { get; set; } = 8000;
        [ConfigurationKeyName("grpc_port")] public int GrpcPort { get; set; } = 8001;
        [ConfigurationKeyName("api_keys")] public List<string> ApiKeys { get; set; } = [];
        [ConfigurationKeyName("max_body_bytes")] public long MaxBodyBytes { get; set; } = 1048576;

        /// <summary>Seconds a request may wait for its first token (queueing included) before a 504; 0 = no deadline.</summary>
        [ConfigurationKeyName("first_token_timeout_s")] public double FirstTokenTimeoutSeconds { get; set; } = 120;
        /// <summary>Generation requests open on one gateway at once; past it, 429 with Retry-After. 0 = unlimited.</summary>
        [ConfigurationKeyName("max_concurrent_requests")] public int MaxConcurrentRequests { get; set; } = 1024;
    }

    /// <summary>The first invalid setting as (key, message), or null when all are valid.</summary>
    public (string Key, string Message)? Validate()
    {
        if (Model.DType is not "auto")
            return ("model.dtype", $"only 'auto' (the weights' own dtype) is supported, got '{Model.DType}'");
        if (Device is not ("auto" or "cpu" or "cuda")) return ("device", $"must be auto, cpu or cuda, got '{Device}'");
        var e = Engine;
        if (e.BlockSize < 1) return ("engine.block_size", $"must be at least 1, got {e.BlockSize}");
        if (e.MaxNumSeqs < 1) return ("engine.max_num_seqs", $"must be at least 1, got {e.MaxNumSeqs}");
        if (e.MaxWaiting < 0) return ("engine.max_waiting", $"must be 0 (no queue beyond the batch) or positive, got {e.MaxWaiting}");
        if (e.MaxConsecutiveStepFailures < 1) return ("engine.max_consecutive_step_failures", $"must be at least 1, got {e.MaxConsecutiveStepFailures}");
        if (e.MaxNumBatchedTokens < 1) return ("engine.max_num_batched_tokens", $"must be at least 1, got {e.MaxNumBatchedTokens}");
        if (e.MaxModelLen < 0) return ("engine.max_model_len", $"must be 0 (the model's) or positive, got {e.MaxModelLen}");
        if (e.KvCacheBytes < 1) return ("engine.kv_cache_bytes", $"must be positive, got {e.KvCacheBytes}");
        if (!(e.GpuMemoryUtilization > 0 && e.GpuMemoryUtilization <= 1)) return ("engine.gpu_memory_utilization", $"must be in (0, 1], got {e.GpuMemoryUtilization}");
        if (e.KvCacheDType is not ("auto" or "bf16" or "bfloat16" or "f32" or "float32"))
            return ("engine.kv_cache_dtype", $"must be auto, bf16 or f32, got '{e.KvCacheDType}'");
        if (Gateway.Host is not ("" or "0.0.0.0" or "*" or "::" or "[::]" or "localhost") && !System.Net.IPAddress.TryParse(Gateway.Host, out _))
            return ("gateway.host", $"must be 0.0.0.0, localhost or an IP address, got '{Gateway.Host}'");
        if (e.TensorParallelSize < 1) return ("engine.tensor_parallel_size", $"must be at least 1, got {e.TensorParallelSize}");
        if (e.Sampling is not ("auto" or "host" or "device")) return ("engine.sampling", $"must be auto, host or device, got '{e.Sampling}'");
        if (e.Threads < 0) return ("engine.threads", $"must be 0 (all cores) or positive, got {e.Threads}");
        if (e.CpuIsa is not ("auto" or "avx512" or "avx2" or "neon" or "portable"))
            return ("engine.cpu_isa", $"must be auto, avx512, avx2, neon or portable, got '{e.CpuIsa}'");
        if (e.Backend is not ("model" or "simulated")) return ("engine.backend", $"must be model or simulated, got '{e.Backend}'");
        var s = Simulated;
        if (!(s.StepOverheadMs >= 0)) return ("simulated.step_overhead_ms", $"must be >= 0, got {s.StepOverheadMs}");
        if (!(s.PerTokenMs >= 0)) return ("simulated.per_token_ms", $"must be >= 0, got {s.PerTokenMs}");
        if (s.VocabSize < 2) return ("simulated.vocab_size", $"must be at least 2, got {s.VocabSize}");
        if (!(s.StepFaultRate >= 0 && s.StepFaultRate <= 1)) return ("simulated.step_fault_rate", $"must be in [0, 1], got {s.StepFaultRate}");
        var c = Cluster;
        if (string.IsNullOrWhiteSpace(c.ClusterId)) return ("cluster.cluster_id", "must not be empty");
        if (string.IsNullOrWhiteSpace(c.ServiceId)) return ("cluster.service_id", "must not be empty");
        if (c.SiloPort is < 0 or > 65535) return ("cluster.silo_port", $"must be a port number, got {c.SiloPort}");
        if (c.GatewayPort is < 0 or > 65535) return ("cluster.gateway_port", $"must be a port number, got {c.GatewayPort}");
        if (c.HealthPort is < 0 or > 65535) return ("cluster.health_port", $"must be a port number (0 = none), got {c.HealthPort}");
        if (c.AdvertisedIp.Length > 0 && !System.Net.IPAddress.TryParse(c.AdvertisedIp, out _))
            return ("cluster.advertised_ip", $"must be an IP address, got '{c.AdvertisedIp}'");
        var g = Gateway;
        if (g.HttpPort is < 0 or > 65535) return ("gateway.http_port", $"must be a port number, got {g.HttpPort}");
        if (g.GrpcPort is < 0 or > 65535) return ("gateway.grpc_port", $"must be a port number, got {g.GrpcPort}");
        if (g.MaxBodyBytes < 1) return ("gateway.max_body_bytes", $"must be positive, got {g.MaxBodyBytes}");
        if (!(g.FirstTokenTimeoutSeconds >= 0)) return ("gateway.first_token_timeout_s", $"must be 0 (none) or positive, got {g.FirstTokenTimeoutSeconds}");
        if (g.MaxConcurrentRequests < 0) return ("gateway.max_concurrent_requests", $"must be 0 (unlimited) or positive, got {g.MaxConcurrentRequests}");
        return null;
    }
}
