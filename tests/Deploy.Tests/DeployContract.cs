namespace Loom.Deploy.Tests;

/// <summary>
/// Every assumption the deploy tests make about Loom's executables, endpoints
/// and configuration, in one place. The cluster and gateway work lands in other
/// branches; when a name there differs, change it here (and in the chart).
/// </summary>
public static class DeployContract
{
    // Repository layout.
    public const string ChartDir = "deploy/k8s/helm/loom";
    public const string GpuMultiSiloValues = "values-gpu-multisilo.yaml";
    public const string ExternalRedisValues = "values-external-redis.yaml";
    public const string PublishScript = "deploy/docker/publish.sh";
    public const string GatewayDockerfile = "deploy/docker/Dockerfile.gateway";
    public const string SiloDockerfile = "deploy/docker/Dockerfile.silo";
    public const string InstallHelmScript = "scripts/install-helm.sh";

    // Executables: `dotnet loom.dll serve --config FILE`, `dotnet Loom.Silo.dll --config FILE`.
    public const string GatewayDll = "loom.dll";
    public const string GatewayVerb = "serve";
    public const string SiloDll = "Loom.Silo.dll";
    public const string ConfigSwitch = "--config";
    public const string AppDir = "/app";

    // Configuration: one YAML file, env overrides LOOM_<SECTION>__<KEY>.
    public const string ConfigFileName = "loom.yaml";
    public const string ConfigMountDir = "/etc/loom";
    public const string ConfigEnvVar = "LOOM_CONFIG";
    public const string EnvPrefix = "LOOM_";
    public const string RedisEnvVar = "LOOM_CLUSTER__REDIS";
    public const string AdvertisedIpEnvVar = "LOOM_CLUSTER__ADVERTISED_IP";
    public const string ApiKeyEnvPrefix = "LOOM_GATEWAY__API_KEYS__";

    /// <summary>Every key Loom's config has (the agreed contract), as .NET configuration paths.</summary>
    public static readonly string[] ConfigKeys =
    [
        "model:path", "model:name", "model:dtype",
        "device",
        "engine:block_size", "engine:max_num_seqs", "engine:max_num_batched_tokens", "engine:max_model_len",
        "engine:kv_cache_bytes", "engine:gpu_memory_utilization", "engine:enable_prefix_caching", "engine:threads",
        "engine:backend",
        "simulated:step_overhead_ms", "simulated:per_token_ms", "simulated:vocab_size",
        "cluster:redis", "cluster:cluster_id", "cluster:service_id", "cluster:silo_port", "cluster:gateway_port",
        "cluster:advertised_ip", "cluster:health_port",
        "gateway:http_port", "gateway:grpc_port", "gateway:max_body_bytes",
    ];

    public const string SiloPortKey = "cluster:silo_port";
    public const string OrleansGatewayPortKey = "cluster:gateway_port";
    public const string HealthPortKey = "cluster:health_port";
    public const string HttpPortKey = "gateway:http_port";
    public const string GrpcPortKey = "gateway:grpc_port";
    public const string RedisKey = "cluster:redis";
    public const string ServiceIdKey = "cluster:service_id";
    public const string ClusterIdKey = "cluster:cluster_id";
    public const string ModelPathKey = "model:path";

    // Endpoints. Gateway: /health (liveness + readiness), /metrics, /v1/*.
    // Silo: /health on cluster.health_port, 503 until the model is loaded.
    public const string GatewayHealthPath = "/health";
    public const string SiloHealthPath = "/health";
    public const string SiloLivePath = "/live";
    public const string MetricsPath = "/metrics";
    public const string ModelsPath = "/v1/models";
    public const string CompletionsPath = "/v1/completions";

    // Microsoft.Orleans.Hosting.Kubernetes.
    public const string OrleansServiceIdLabel = "orleans/serviceId";
    public const string OrleansClusterIdLabel = "orleans/clusterId";
    public static readonly string[] PodIdentityEnv = ["POD_NAME", "POD_NAMESPACE", "POD_IP"];
    public static readonly string[] OrleansRbacVerbs = ["get", "list", "watch", "patch"];

    // Kubernetes.
    public const string GpuResource = "nvidia.com/gpu";
    public const string ComponentLabel = "app.kubernetes.io/component";
    public const string InstanceLabel = "app.kubernetes.io/instance";
}
