using Loom.Silo.Engine;
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

    [ConfigurationKeyName("engine")] public EngineOptions Engine { get; set; } = new();
    [ConfigurationKeyName("simulated")] public SimulatedSection Simulated { get; set; } = new();
    [ConfigurationKeyName("cluster")] public ClusterSection Cluster { get; set; } = new();
    [ConfigurationKeyName("gateway")] public LoomGatewayOptions Gateway { get; set; } = new();

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

    /// <summary>The first invalid setting as (key, message), or null when all are valid.</summary>
    public (string Key, string Message)? Validate()
    {
        if (Model.DType is not "auto")
            return ("model.dtype", $"only 'auto' (the weights' own dtype) is supported, got '{Model.DType}'");
        if (Model.ToolCallParser.Replace('-', '_').ToLowerInvariant() is not ("" or "hermes" or "qwen" or "qwen3" or "qwen2_5" or "llama3_json" or "llama3" or "llama" or "llama3_1" or "mistral"))
            return ("model.tool_call_parser", $"must be hermes, llama3_json or mistral (empty = from the chat template), got '{Model.ToolCallParser}'");
        if (Device is not ("auto" or "cpu" or "cuda")) return ("device", $"must be auto, cpu or cuda, got '{Device}'");
        if (Engine.Validate() is { } engine) return ("engine." + engine.Key, engine.Message);
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
        if (Gateway.Validate() is { } gateway) return ("gateway." + gateway.Key, gateway.Message);
        return null;
    }
}
