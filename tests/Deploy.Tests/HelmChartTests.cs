using k8s.Models;
using Loom.Deploy.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using C = Loom.Deploy.Tests.DeployContract;

namespace Loom.Deploy.Tests;

/// <summary>`helm lint` / `helm template` of deploy/k8s/helm/loom, the manifests parsed with KubernetesClient.</summary>
public sealed class HelmChartTests
{
    private const string Release = "rel";

    public static TheoryData<string> ValuesFiles => new() { "", C.GpuMultiSiloValues, C.ExternalRedisValues };

    private static string? File(string values) => values.Length == 0 ? null : values;

    private static async Task<RenderedChart> Render(string values = "", params string[] sets)
        => new(Release, await Helm.TemplateAsync(Release, File(values), sets));

    [SkippableTheory]
    [MemberData(nameof(ValuesFiles))]
    public async Task Lints(string values)
    {
        var output = await Helm.LintAsync(File(values));
        Assert.Contains("0 chart(s) failed", output);
    }

    [SkippableFact]
    public async Task LintRejectsValuesTheSchemaForbids()
    {
        foreach (var bad in new[] { "silo.replicas=-1", "config.device=tpu", "model.source=s3", "notAValue=1", "config.cluster.silo_port=70000" })
        {
            var r = await Helm.RunAsync("lint", RepoPaths.Of(C.ChartDir), "--set", bad);
            Assert.True(r.ExitCode != 0, $"helm lint accepted --set {bad}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(ValuesFiles))]
    public async Task EveryManifestParsesAndIsLabelledForTheRelease(string values)
    {
        var chart = await Render(values);
        Assert.NotEmpty(chart.Objects);
        foreach (var o in chart.Objects.OfType<k8s.IKubernetesObject<V1ObjectMeta>>())
        {
            Assert.StartsWith(Release + "-", o.Metadata.Name, StringComparison.Ordinal);
            Assert.Equal(Release, o.Metadata.Labels[C.InstanceLabel]);
        }

        Assert.Single(chart.All<V1Deployment>());
        Assert.Single(chart.All<V1ConfigMap>());
        Assert.NotNull(chart.Silo);
    }

    [SkippableTheory]
    [MemberData(nameof(ValuesFiles))]
    public async Task ConfigMapHoldsEveryLoomConfigKey(string values)
    {
        var chart = await Render(values);
        var config = LoomConfig.Load(chart.LoomYaml);
        var missing = C.ConfigKeys.Where(k => !config.AsEnumerable().Any(kv => string.Equals(kv.Key, k, StringComparison.OrdinalIgnoreCase))).ToList();
        Assert.True(missing.Count == 0, "loom.yaml lacks " + string.Join(", ", missing) + "\n" + chart.LoomYaml);
        Assert.True(string.IsNullOrEmpty(config["gateway:api_keys:0"]), "API keys must never be in the ConfigMap");
    }

    [SkippableFact]
    public async Task ConfigMapCarriesTheValuesAndWhatTheChartComputes()
    {
        var chart = await Render();
        var config = LoomConfig.Load(chart.LoomYaml);
        Assert.Equal("auto", config["device"]);
        Assert.Equal("16", config["engine:block_size"]);
        Assert.Equal("64", config["engine:max_num_seqs"]);
        Assert.Equal("512", config["engine:max_num_batched_tokens"]);
        Assert.Equal("268435456", config["engine:kv_cache_bytes"]);
        Assert.Equal("0.9", config["engine:gpu_memory_utilization"]);
        Assert.Equal("true", config["engine:enable_prefix_caching"]);
        Assert.Equal("model", config["engine:backend"]);
        Assert.Equal("11111", config[C.SiloPortKey]);
        Assert.Equal("30000", config[C.OrleansGatewayPortKey]);
        Assert.Equal("8080", config[C.HealthPortKey]);
        Assert.Equal("8000", config[C.HttpPortKey]);
        Assert.Equal("8001", config[C.GrpcPortKey]);
        Assert.Equal("loom", config[C.ServiceIdKey]);
        Assert.Equal("loom", config[C.ClusterIdKey]);
        Assert.Equal($"{Release}-loom-redis:6379", config[C.RedisKey]);
        Assert.Equal("/models/model", config[C.ModelPathKey]);

        var multi = LoomConfig.Load((await Render(C.GpuMultiSiloValues)).LoomYaml);
        Assert.Equal("cuda", multi["device"]);
        Assert.Equal("8192", multi["engine:max_num_batched_tokens"]);
        Assert.Equal("loom-prod", multi[C.ClusterIdKey]);
        Assert.Equal("/models/llama3-70b-instruct", multi[C.ModelPathKey]);

        var overridden = LoomConfig.Load((await Render("", "config.gateway.http_port=9000", "config.model.path=/data/m")).LoomYaml);
        Assert.Equal("9000", overridden[C.HttpPortKey]);
        Assert.Equal("/data/m", overridden[C.ModelPathKey]);
    }

    [SkippableTheory]
    [InlineData("", 1, 1)]
    [InlineData(C.GpuMultiSiloValues, 4, 8)]
    [InlineData(C.ExternalRedisValues, 2, 1)]
    public async Task SiloReplicasAndGpuLimitsFollowValues(string values, int replicas, int gpus)
    {
        var chart = await Render(values);
        Assert.Equal(replicas, chart.Silo.Spec.Replicas);
        var limits = chart.SiloContainer.Resources.Limits;
        Assert.Equal(new ResourceQuantity(gpus.ToString(System.Globalization.CultureInfo.InvariantCulture)), limits[C.GpuResource]);
        Assert.False(chart.GatewayContainer.Resources.Limits?.ContainsKey(C.GpuResource) ?? false, "the gateway needs no GPU");

        var scaled = await Render(values, "silo.replicas=7", "silo.gpus=2");
        Assert.Equal(7, scaled.Silo.Spec.Replicas);
        Assert.Equal(new ResourceQuantity("2"), scaled.SiloContainer.Resources.Limits[C.GpuResource]);

        var cpu = await Render(values, "silo.gpus=0");
        Assert.False(cpu.SiloContainer.Resources.Limits?.ContainsKey(C.GpuResource) ?? false);
    }

    [SkippableFact]
    public async Task GatewayReplicasFollowValuesOrTheAutoscaler()
    {
        var chart = await Render();
        Assert.Null(chart.Gateway.Spec.Replicas);
        var hpa = chart.Single<V2HorizontalPodAutoscaler>("-gateway");
        Assert.Equal(chart.Gateway.Metadata.Name, hpa.Spec.ScaleTargetRef.Name);
        Assert.Equal("Deployment", hpa.Spec.ScaleTargetRef.Kind);
        Assert.Equal(2, hpa.Spec.MinReplicas);
        Assert.Equal(8, hpa.Spec.MaxReplicas);

        var fixedCount = await Render(C.GpuMultiSiloValues);
        Assert.Equal(3, fixedCount.Gateway.Spec.Replicas);
        Assert.Empty(fixedCount.All<V2HorizontalPodAutoscaler>());
        var pdb = fixedCount.Single<V1PodDisruptionBudget>("-gateway");
        Assert.Equal("2", pdb.Spec.MinAvailable.Value);
        AssertSelects(pdb.Spec.Selector, fixedCount.Gateway.Spec.Template.Metadata.Labels);
    }

    [SkippableTheory]
    [MemberData(nameof(ValuesFiles))]
    public async Task ProbesHitTheRealEndpointsOnTheConfiguredPorts(string values)
    {
        var chart = await Render(values);
        var gw = chart.GatewayContainer;
        var gwConfig = chart.EffectiveConfig(gw);
        var httpPort = int.Parse(gwConfig[C.HttpPortKey]!, System.Globalization.CultureInfo.InvariantCulture);
        foreach (var probe in new[] { gw.ReadinessProbe, gw.LivenessProbe })
        {
            Assert.Equal(C.GatewayHealthPath, probe.HttpGet.Path);
            Assert.Equal(httpPort, ResolvePort(gw, probe.HttpGet.Port));
        }

        Assert.Equal(int.Parse(gwConfig[C.GrpcPortKey]!, System.Globalization.CultureInfo.InvariantCulture), gw.Ports.Single(p => p.Name == "grpc").ContainerPort);

        var silo = chart.SiloContainer;
        var siloConfig = chart.EffectiveConfig(silo);
        int Port(string key) => int.Parse(siloConfig[key]!, System.Globalization.CultureInfo.InvariantCulture);
        foreach (var probe in new[] { silo.ReadinessProbe, silo.StartupProbe })
        {
            Assert.Equal(C.SiloHealthPath, probe.HttpGet.Path);
            Assert.Equal(Port(C.HealthPortKey), ResolvePort(silo, probe.HttpGet.Port));
        }

        // Liveness asks /live, which fails only when a restart is the cure (a dead engine thread or a
        // sick worker): a loading or draining silo answers 503 on /health but 200 on /live.
        Assert.Equal(C.SiloLivePath, silo.LivenessProbe.HttpGet.Path);
        Assert.Equal(Port(C.HealthPortKey), ResolvePort(silo, silo.LivenessProbe.HttpGet.Port));
        Assert.True(silo.StartupProbe.PeriodSeconds * silo.StartupProbe.FailureThreshold >= 1800, "the model load gets its startup budget");

        var containerPorts = silo.Ports.Select(p => p.ContainerPort).ToHashSet();
        Assert.Contains(Port(C.SiloPortKey), containerPorts);
        Assert.Contains(Port(C.OrleansGatewayPortKey), containerPorts);

        var headless = chart.Single<V1Service>("-silo-headless");
        Assert.Equal("None", headless.Spec.ClusterIP);
        Assert.Equal(chart.Silo.Spec.ServiceName, headless.Metadata.Name);
        AssertSelects(headless.Spec.Selector, chart.Silo.Spec.Template.Metadata.Labels);

        var gwService = chart.Single<V1Service>("-gateway");
        Assert.Equal(httpPort, gwService.Spec.Ports.Single(p => p.Name == "http").Port);
        AssertSelects(gwService.Spec.Selector, chart.Gateway.Spec.Template.Metadata.Labels);
    }

    [SkippableFact]
    public async Task PortsFollowTheConfigValues()
    {
        var chart = await Render("", "config.gateway.http_port=9000", "config.cluster.health_port=9090", "config.cluster.silo_port=12000", "config.cluster.gateway_port=31000");
        Assert.Equal(9000, ResolvePort(chart.GatewayContainer, chart.GatewayContainer.ReadinessProbe.HttpGet.Port));
        Assert.Equal(9090, ResolvePort(chart.SiloContainer, chart.SiloContainer.ReadinessProbe.HttpGet.Port));
        var policy = chart.Single<V1NetworkPolicy>("-silo");
        var allowed = policy.Spec.Ingress.SelectMany(r => r.Ports).Select(p => p.Port.Value).ToHashSet();
        Assert.Equal(new HashSet<string> { "12000", "31000", "9090" }, allowed);
    }

    [SkippableTheory]
    [MemberData(nameof(ValuesFiles))]
    public async Task ExecutablesGetTheirConfigFileAndArguments(string values)
    {
        var chart = await Render(values);
        var configPath = $"{C.ConfigMountDir}/{C.ConfigFileName}";
        Assert.Equal(["dotnet", C.GatewayDll, C.GatewayVerb], chart.GatewayContainer.Command);
        Assert.Equal(["dotnet", C.SiloDll], chart.SiloContainer.Command);
        foreach (var (pod, container) in new[] { (chart.Gateway.Spec.Template.Spec, chart.GatewayContainer), (chart.Silo.Spec.Template.Spec, chart.SiloContainer) })
        {
            Assert.Equal([C.ConfigSwitch, configPath], container.Args);
            Assert.Equal(configPath, container.Env.Single(e => e.Name == C.ConfigEnvVar).Value);
            Assert.Equal(C.AppDir, container.WorkingDir);
            var mount = container.VolumeMounts.Single(m => m.MountPath == C.ConfigMountDir);
            var volume = pod.Volumes.Single(v => v.Name == mount.Name);
            Assert.Equal(chart.ConfigMap.Metadata.Name, volume.ConfigMap.Name);
            Assert.Equal(true, container.SecurityContext.ReadOnlyRootFilesystem);
            Assert.Equal(true, pod.SecurityContext.RunAsNonRoot);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(ValuesFiles))]
    public async Task OrleansKubernetesHostingIsWired(string values)
    {
        var chart = await Render(values);
        var config = chart.EffectiveConfig(chart.SiloContainer);
        var labels = chart.Silo.Spec.Template.Metadata.Labels;
        Assert.Equal(config[C.ServiceIdKey], labels[C.OrleansServiceIdLabel]);
        Assert.Equal(config[C.ClusterIdKey], labels[C.OrleansClusterIdLabel]);

        // The cluster agent treats every pod with these labels as a silo: gateways must not carry them.
        Assert.False(chart.Gateway.Spec.Template.Metadata.Labels.ContainsKey(C.OrleansServiceIdLabel));

        var env = chart.SiloContainer.Env.ToDictionary(e => e.Name);
        Assert.Equal("metadata.name", env["POD_NAME"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("metadata.namespace", env["POD_NAMESPACE"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("status.podIP", env["POD_IP"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("status.podIP", env[C.AdvertisedIpEnvVar].ValueFrom.FieldRef.FieldPath);
        Assert.Equal(config[C.ServiceIdKey], env["ORLEANS_SERVICE_ID"].Value);
        Assert.Equal(config[C.ClusterIdKey], env["ORLEANS_CLUSTER_ID"].Value);

        var sa = chart.Silo.Spec.Template.Spec.ServiceAccountName;
        Assert.Contains(chart.All<V1ServiceAccount>(), s => s.Metadata.Name == sa);
        var binding = chart.Single<V1RoleBinding>("-orleans");
        Assert.Contains(binding.Subjects, s => s.Kind == "ServiceAccount" && s.Name == sa && s.NamespaceProperty == "loom-test");
        var role = chart.All<V1Role>().Single(r => r.Metadata.Name == binding.RoleRef.Name);
        var podRule = role.Rules.Single(r => r.Resources.Contains("pods"));
        Assert.Equal([""], podRule.ApiGroups);
        Assert.Equal(C.OrleansRbacVerbs.Order(), podRule.Verbs.Order());

        var deleting = await Render(values, "orleans.deleteDefunctSiloPods=true");
        Assert.Contains("delete", deleting.All<V1Role>().Single().Rules.Single().Verbs);
    }

    [SkippableTheory]
    [MemberData(nameof(ValuesFiles))]
    public async Task NetworkPolicyAdmitsOnlyTheReleaseToSiloPorts(string values)
    {
        var chart = await Render(values);
        var policy = chart.Single<V1NetworkPolicy>("-silo");
        var siloLabels = chart.Silo.Spec.Template.Metadata.Labels;
        AssertSelects(policy.Spec.PodSelector, siloLabels);
        Assert.False(Matches(policy.Spec.PodSelector, chart.Gateway.Spec.Template.Metadata.Labels), "the silo policy must not select gateways");
        Assert.Equal(["Ingress"], policy.Spec.PolicyTypes);

        var config = chart.EffectiveConfig(chart.SiloContainer);
        var siloPorts = new[] { C.SiloPortKey, C.OrleansGatewayPortKey, C.HealthPortKey }.Select(k => config[k]!).ToHashSet();
        var rule = Assert.Single(policy.Spec.Ingress);
        Assert.Equal(siloPorts, rule.Ports.Select(p => p.Port.Value).ToHashSet());
        var peer = Assert.Single(rule.FromProperty);
        Assert.Null(peer.NamespaceSelector);
        Assert.Null(peer.IpBlock);
        // The peers: exactly the release's pods (gateways and silos), nobody else's.
        Assert.True(Matches(peer.PodSelector, chart.Gateway.Spec.Template.Metadata.Labels));
        Assert.True(Matches(peer.PodSelector, siloLabels));
        var foreign = new Dictionary<string, string>(siloLabels) { [C.InstanceLabel] = "other-release" };
        Assert.False(Matches(peer.PodSelector, foreign));

        var monitored = await Render(values, "networkPolicy.healthFrom[0].namespaceSelector.matchLabels.name=monitoring");
        var extra = monitored.Single<V1NetworkPolicy>("-silo").Spec.Ingress[1];
        Assert.Equal([config[C.HealthPortKey]], extra.Ports.Select(p => p.Port.Value));

        var off = await Render(values, "networkPolicy.enabled=false");
        Assert.Empty(off.All<V1NetworkPolicy>());
    }

    [SkippableFact]
    public async Task BundledRedisByDefaultExternalRedisDisablesIt()
    {
        var bundled = await Render();
        var redisSet = bundled.Single<V1StatefulSet>("-redis");
        var redisService = bundled.Single<V1Service>("-redis");
        AssertSelects(redisService.Spec.Selector, redisSet.Spec.Template.Metadata.Labels);
        Assert.Equal($"{redisService.Metadata.Name}:{redisService.Spec.Ports.Single().Port}", LoomConfig.Load(bundled.LoomYaml)[C.RedisKey]);
        var redisPolicy = bundled.Single<V1NetworkPolicy>("-redis");
        AssertSelects(redisPolicy.Spec.PodSelector, redisSet.Spec.Template.Metadata.Labels);

        var external = await Render(C.ExternalRedisValues);
        Assert.DoesNotContain(external.All<V1StatefulSet>(), s => s.Metadata.Name.EndsWith("-redis", StringComparison.Ordinal));
        Assert.DoesNotContain(external.All<V1Service>(), s => s.Metadata.Name.EndsWith("-redis", StringComparison.Ordinal));
        Assert.DoesNotContain(external.All<V1NetworkPolicy>(), s => s.Metadata.Name.EndsWith("-redis", StringComparison.Ordinal));
        foreach (var container in new[] { external.GatewayContainer, external.SiloContainer })
        {
            var redisEnv = container.Env.Single(e => e.Name == C.RedisEnvVar);
            Assert.Equal("loom-redis", redisEnv.ValueFrom.SecretKeyRef.Name);
            Assert.Equal("connectionString", redisEnv.ValueFrom.SecretKeyRef.Key);
        }

        var inline = await Render("", "redis.enabled=false", "redis.external.connectionString=redis.example:6380\\,ssl=true");
        Assert.DoesNotContain(inline.All<V1StatefulSet>(), s => s.Metadata.Name.EndsWith("-redis", StringComparison.Ordinal));
        Assert.Equal("redis.example:6380,ssl=true", LoomConfig.Load(inline.LoomYaml)[C.RedisKey]);

        var neither = await Helm.RunAsync("template", Release, RepoPaths.Of(C.ChartDir), "--set", "redis.enabled=false");
        Assert.NotEqual(0, neither.ExitCode);
        Assert.Contains("redis.external.connectionString", neither.StdErr);
    }

    [SkippableFact]
    public async Task SiloShutsDownGracefullyWithinTheDrainTime()
    {
        foreach (var drain in new[] { 120, 600 })
        {
            var chart = await Render("", $"silo.drainSeconds={drain}");
            var pod = chart.Silo.Spec.Template.Spec;
            Assert.Equal(drain + 15, pod.TerminationGracePeriodSeconds);
            var hostTimeout = chart.SiloContainer.Env.Single(e => e.Name == "DOTNET_SHUTDOWNTIMEOUTSECONDS").Value;
            Assert.Equal(drain.ToString(System.Globalization.CultureInfo.InvariantCulture), hostTimeout);
        }

        var pdb = (await Render()).Single<V1PodDisruptionBudget>("-silo");
        Assert.Equal("1", pdb.Spec.MaxUnavailable.Value);
    }

    [SkippableFact]
    public async Task SiloSchedulingAndCudaSettings()
    {
        var chart = await Render(C.GpuMultiSiloValues);
        var pod = chart.Silo.Spec.Template.Spec;
        Assert.Equal("NVIDIA-H100-80GB-HBM3", pod.NodeSelector["nvidia.com/gpu.product"]);
        Assert.Contains(pod.Tolerations, t => t.Key == C.GpuResource && t.Effect == "NoSchedule");
        var anti = Assert.Single(pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution);
        Assert.Equal("kubernetes.io/hostname", anti.TopologyKey);
        AssertSelects(anti.LabelSelector, chart.Silo.Spec.Template.Metadata.Labels);

        var env = chart.SiloContainer.Env.ToDictionary(e => e.Name);
        var cacheMount = chart.SiloContainer.VolumeMounts.Single(m => m.MountPath == env["CUDA_CACHE_PATH"].Value);
        Assert.Contains(chart.Silo.Spec.VolumeClaimTemplates, t => t.Metadata.Name == cacheMount.Name);
        Assert.Equal("compute,utility", env["NVIDIA_DRIVER_CAPABILITIES"].Value);
        var shm = pod.Volumes.Single(v => v.Name == chart.SiloContainer.VolumeMounts.Single(m => m.MountPath == "/dev/shm").Name);
        Assert.Equal("Memory", shm.EmptyDir.Medium);
    }

    [SkippableTheory]
    [InlineData("pvc", "persistentVolumeClaim")]
    [InlineData("hostPath", "hostPath")]
    [InlineData("image", "emptyDir")]
    [InlineData("url", "emptyDir")]
    [InlineData("none", null)]
    public async Task ModelVolumeSourceIsChosenByValues(string source, string? volumeKind)
    {
        var chart = await Render("", $"model.source={source}", "model.image.repository=registry.example/weights", "model.url.url=https://example.com/m.tar.gz");
        var pod = chart.Silo.Spec.Template.Spec;
        var model = pod.Volumes.SingleOrDefault(v => v.Name == "model");
        var modelPath = LoomConfig.Load(chart.LoomYaml)[C.ModelPathKey];
        if (volumeKind is null)
        {
            Assert.Null(model);
            Assert.True(string.IsNullOrEmpty(modelPath));
            return;
        }

        Assert.NotNull(model);
        object? chosen = volumeKind switch
        {
            "persistentVolumeClaim" => model.PersistentVolumeClaim,
            "hostPath" => model.HostPath,
            _ => model.EmptyDir,
        };
        Assert.NotNull(chosen);
        var mount = chart.SiloContainer.VolumeMounts.Single(m => m.Name == "model");
        Assert.StartsWith(mount.MountPath + "/", modelPath, StringComparison.Ordinal);
        Assert.Equal(source is "pvc" or "hostPath", mount.ReadOnlyProperty);
        Assert.Equal(source == "pvc", chart.All<V1PersistentVolumeClaim>().Any(c => c.Metadata.Name == model.PersistentVolumeClaim?.ClaimName));
        if (source is "image" or "url")
        {
            var init = Assert.Single(pod.InitContainers);
            Assert.Equal(modelPath, init.Env.Single(e => e.Name == "DEST").Value);
            Assert.Contains(init.VolumeMounts, m => m.Name == "model" && m.MountPath == mount.MountPath);
        }
        else
        {
            Assert.Null(pod.InitContainers);
        }
    }

    [SkippableFact]
    public async Task ApiKeysComeFromASecret()
    {
        var none = await Render();
        Assert.DoesNotContain(none.GatewayContainer.Env, e => e.Name.StartsWith(C.ApiKeyEnvPrefix, StringComparison.Ordinal));
        Assert.Empty(none.All<V1Secret>());

        var chart = await Render("", "apiKeys.keys={sk-one,sk-two}");
        var secret = chart.Single<V1Secret>("-api-keys");
        Assert.DoesNotContain("sk-one", chart.LoomYaml, StringComparison.Ordinal);
        var env = chart.GatewayContainer.Env.Where(e => e.Name.StartsWith(C.ApiKeyEnvPrefix, StringComparison.Ordinal)).ToList();
        Assert.Equal([C.ApiKeyEnvPrefix + "0", C.ApiKeyEnvPrefix + "1"], env.Select(e => e.Name));
        var values = env.Select(e =>
        {
            Assert.Equal(secret.Metadata.Name, e.ValueFrom.SecretKeyRef.Name);
            return System.Text.Encoding.UTF8.GetString(secret.Data[e.ValueFrom.SecretKeyRef.Key]);
        });
        Assert.Equal(["sk-one", "sk-two"], values);
        Assert.DoesNotContain(chart.SiloContainer.Env, e => e.Name.StartsWith(C.ApiKeyEnvPrefix, StringComparison.Ordinal));

        var existing = await Render(C.GpuMultiSiloValues);
        Assert.Empty(existing.All<V1Secret>());
        var refs = existing.GatewayContainer.Env.Where(e => e.Name.StartsWith(C.ApiKeyEnvPrefix, StringComparison.Ordinal)).Select(e => e.ValueFrom.SecretKeyRef).ToList();
        Assert.Equal(["team-a", "team-b"], refs.Select(r => r.Key));
        Assert.All(refs, r => Assert.Equal("loom-api-keys", r.Name));
    }

    [SkippableFact]
    public async Task ServiceMonitorScrapesTheGatewayMetrics()
    {
        Assert.Empty((await Render()).All<ServiceMonitor>());
        var chart = await Render(C.GpuMultiSiloValues);
        var monitor = Assert.Single(chart.All<ServiceMonitor>());
        var endpoint = Assert.Single(monitor.Spec.Endpoints);
        Assert.Equal(C.MetricsPath, endpoint.Path);
        var service = chart.Single<V1Service>("-gateway");
        Assert.Contains(service.Spec.Ports, p => p.Name == endpoint.Port && p.Port == int.Parse(chart.EffectiveConfig(chart.GatewayContainer)[C.HttpPortKey]!, System.Globalization.CultureInfo.InvariantCulture));
        AssertSelects(monitor.Spec.Selector, service.Metadata.Labels);
        Assert.Equal("kube-prometheus-stack", monitor.Metadata.Labels["release"]);
    }

    private static int ResolvePort(V1Container container, IntOrString port)
        => int.TryParse(port.Value, out var n) ? n : container.Ports.Single(p => p.Name == port.Value).ContainerPort;

    private static bool Matches(V1LabelSelector selector, IDictionary<string, string> labels)
    {
        Assert.Null(selector.MatchExpressions);
        return Matches(selector.MatchLabels, labels);
    }

    private static bool Matches(IDictionary<string, string> selector, IDictionary<string, string> labels)
        => selector.Count > 0 && selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private static void AssertSelects(V1LabelSelector selector, IDictionary<string, string> labels)
        => Assert.True(Matches(selector, labels), $"selector {string.Join(",", selector.MatchLabels)} does not select {string.Join(",", labels)}");

    private static void AssertSelects(IDictionary<string, string> selector, IDictionary<string, string> labels)
        => Assert.True(Matches(selector, labels), $"selector {string.Join(",", selector)} does not select {string.Join(",", labels)}");
}
