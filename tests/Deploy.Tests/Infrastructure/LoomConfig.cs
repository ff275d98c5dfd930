using Loom.Silo.Configuration;
using Microsoft.Extensions.Configuration;

namespace Loom.Deploy.Tests.Infrastructure;

/// <summary>
/// Loads a Loom YAML config (plus LOOM_* env overrides) the way Loom does: into
/// an <see cref="IConfiguration"/> with ':'-separated, case-insensitive keys.
/// When Loom's own loader lands, replace the body of <see cref="Load"/> with a
/// call to it; the tests read only the returned IConfiguration.
/// </summary>
public static class LoomConfig
{
    /// <summary>
    /// The rendered YAML through Loom's own loader (its YAML source and binder), with the pod's
    /// LOOM_* environment applied; binding validates every key, so a chart key Loom does not
    /// know fails here.
    /// </summary>
    public static IConfiguration Load(string yaml, IEnumerable<KeyValuePair<string, string?>>? environment = null)
    {
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(Flatten(yaml))
            .AddInMemoryCollection(EnvOverrides(environment ?? []))
            .Build();
        LoomConfiguration.Bind(config);
        return config;
    }

    public static Dictionary<string, string?> Flatten(string yaml) => YamlConfigurationProvider.Parse(yaml, "loom.yaml");

    /// <summary>LOOM_CLUSTER__REDIS=x → cluster:redis=x (AddEnvironmentVariables("LOOM_") semantics).</summary>
    private static IEnumerable<KeyValuePair<string, string?>> EnvOverrides(IEnumerable<KeyValuePair<string, string?>> env)
    {
        foreach (var (name, value) in env)
        {
            if (name.StartsWith(DeployContract.EnvPrefix, StringComparison.OrdinalIgnoreCase) && name != DeployContract.ConfigEnvVar)
            {
                yield return new(name[DeployContract.EnvPrefix.Length..].Replace("__", ":", StringComparison.Ordinal), value);
            }
        }
    }
}
