using Microsoft.Extensions.Configuration;
using YamlDotNet.RepresentationModel;

namespace Loom.Deploy.Tests.Infrastructure;

/// <summary>
/// Loads a Loom YAML config (plus LOOM_* env overrides) the way Loom does: into
/// an <see cref="IConfiguration"/> with ':'-separated, case-insensitive keys.
/// When Loom's own loader lands, replace the body of <see cref="Load"/> with a
/// call to it; the tests read only the returned IConfiguration.
/// </summary>
public static class LoomConfig
{
    public static IConfiguration Load(string yaml, IEnumerable<KeyValuePair<string, string?>>? environment = null)
        => new ConfigurationBuilder()
            .AddInMemoryCollection(Flatten(yaml))
            .AddInMemoryCollection(EnvOverrides(environment ?? []))
            .Build();

    /// <summary>YAML mappings/sequences → "section:key" / "section:0" paths, as a YAML configuration source does.</summary>
    public static Dictionary<string, string?> Flatten(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var result = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (stream.Documents.Count > 0)
        {
            Walk(stream.Documents[0].RootNode, "", result);
        }

        return result;
    }

    private static void Walk(YamlNode node, string path, Dictionary<string, string?> into)
    {
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                {
                    var key = ((YamlScalarNode)k).Value!;
                    Walk(v, path.Length == 0 ? key : path + ":" + key, into);
                }

                break;
            case YamlSequenceNode seq:
                if (seq.Children.Count == 0)
                {
                    into[path] = null;
                }

                for (var i = 0; i < seq.Children.Count; i++)
                {
                    Walk(seq.Children[i], path + ":" + i, into);
                }

                break;
            case YamlScalarNode scalar:
                into[path] = scalar.Value;
                break;
        }
    }

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
