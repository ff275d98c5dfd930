using k8s;
using k8s.Models;

namespace Loom.Deploy.Tests.Infrastructure;

/// <summary>The output of `helm template`, every document parsed into KubernetesClient models (strictly).</summary>
public sealed class RenderedChart
{
    public RenderedChart(string release, string manifests)
    {
        Release = release;
        Text = manifests;
        Objects = KubernetesYaml.LoadAllFromString(manifests, TypeMap, strict: true).Cast<IKubernetesObject>().ToList();
    }

    public string Release { get; }

    public string Text { get; }

    public IReadOnlyList<IKubernetesObject> Objects { get; }

    public IEnumerable<T> All<T>() => Objects.OfType<T>();

    public T Single<T>(string nameSuffix)
        where T : IKubernetesObject<V1ObjectMeta>
    {
        var matches = All<T>().Where(o => o.Metadata.Name.EndsWith(nameSuffix, StringComparison.Ordinal)).ToList();
        Assert.True(matches.Count == 1, $"expected one {typeof(T).Name} named *{nameSuffix}, found {matches.Count}: {string.Join(", ", All<T>().Select(o => o.Metadata.Name))}");
        return matches[0];
    }

    public V1Deployment Gateway => Single<V1Deployment>("-gateway");

    public V1StatefulSet Silo => Single<V1StatefulSet>("-silo");

    public V1ConfigMap ConfigMap => Single<V1ConfigMap>("-config");

    public V1Container GatewayContainer => Gateway.Spec.Template.Spec.Containers.Single(c => c.Name == "gateway");

    public V1Container SiloContainer => Silo.Spec.Template.Spec.Containers.Single(c => c.Name == "silo");

    public string LoomYaml => ConfigMap.Data[DeployContract.ConfigFileName];

    /// <summary>Loom's effective config inside a container: the ConfigMap's YAML plus the container's literal LOOM_* env.</summary>
    public Microsoft.Extensions.Configuration.IConfiguration EffectiveConfig(V1Container container)
        => LoomConfig.Load(LoomYaml, (container.Env ?? []).Where(e => e.Value is not null).Select(e => KeyValuePair.Create(e.Name, (string?)e.Value)));

    /// <summary>apiVersion/kind → model; the default map plus the CRDs the chart may render.</summary>
    private static readonly Dictionary<string, Type> TypeMap = BuildTypeMap();

    private static Dictionary<string, Type> BuildTypeMap()
    {
        var map = new Dictionary<string, Type>();
        foreach (var t in typeof(V1Pod).Assembly.GetTypes())
        {
            var attr = t.GetCustomAttributes(typeof(KubernetesEntityAttribute), false).Cast<KubernetesEntityAttribute>().FirstOrDefault();
            if (attr is null || !typeof(IKubernetesObject).IsAssignableFrom(t))
            {
                continue;
            }

            var apiVersion = string.IsNullOrEmpty(attr.Group) ? attr.ApiVersion : $"{attr.Group}/{attr.ApiVersion}";
            map[$"{apiVersion}/{attr.Kind}"] = t;
        }

        map["monitoring.coreos.com/v1/ServiceMonitor"] = typeof(ServiceMonitor);
        return map;
    }
}

/// <summary>The parts of the Prometheus Operator's ServiceMonitor the chart renders.</summary>
public sealed class ServiceMonitor : IKubernetesObject<V1ObjectMeta>
{
    public string ApiVersion { get; set; } = "monitoring.coreos.com/v1";

    public string Kind { get; set; } = "ServiceMonitor";

    public V1ObjectMeta Metadata { get; set; } = new();

    public ServiceMonitorSpec Spec { get; set; } = new();
}

public sealed class ServiceMonitorSpec
{
    public V1LabelSelector Selector { get; set; } = new();

    public ServiceMonitorNamespaceSelector? NamespaceSelector { get; set; }

    public List<ServiceMonitorEndpoint> Endpoints { get; set; } = [];
}

public sealed class ServiceMonitorNamespaceSelector
{
    public List<string>? MatchNames { get; set; }
}

public sealed class ServiceMonitorEndpoint
{
    public string? Port { get; set; }

    public string? Path { get; set; }

    public string? Interval { get; set; }

    public string? ScrapeTimeout { get; set; }
}
