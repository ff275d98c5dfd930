using Microsoft.Extensions.Configuration;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Loom.Silo.Configuration;

/// <summary>A YAML file as a .NET configuration source: mappings nest with ':', sequences become 0, 1, ... keys.</summary>
public sealed class YamlConfigurationSource : FileConfigurationSource
{
    public override IConfigurationProvider Build(IConfigurationBuilder builder)
    {
        EnsureDefaults(builder);
        return new YamlConfigurationProvider(this);
    }
}

public sealed class YamlConfigurationProvider(YamlConfigurationSource source) : FileConfigurationProvider(source)
{
    public override void Load(Stream stream) => Data = Parse(new StreamReader(stream).ReadToEnd(), Source.Path ?? "the YAML file");

    /// <summary>Flattens a YAML document into configuration keys. Syntax errors name the file, line and column.</summary>
    public static Dictionary<string, string?> Parse(string yaml, string fileName)
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e)
        {
            throw new LoomConfigException(fileName, $"invalid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}");
        }
        if (stream.Documents.Count == 0) return data;
        var root = stream.Documents[0].RootNode;
        if (root is YamlScalarNode { Value: null or "" }) return data; // an empty file
        if (root is not YamlMappingNode) throw new LoomConfigException(fileName, "the top level must be a mapping of keys");
        Visit(root, "", data);
        return data;
    }

    private static void Visit(YamlNode node, string prefix, Dictionary<string, string?> data)
    {
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                    Visit(v, prefix.Length == 0 ? ((YamlScalarNode)k).Value! : prefix + ":" + ((YamlScalarNode)k).Value, data);
                break;
            case YamlSequenceNode seq:
                for (int i = 0; i < seq.Children.Count; i++) Visit(seq.Children[i], prefix + ":" + i, data);
                break;
            case YamlScalarNode scalar:
                // A bare `~`/`null` leaves the default in place rather than binding an empty string.
                if (scalar.Style == ScalarStyle.Plain && scalar.Value is null or "~" or "null") break;
                data[prefix] = scalar.Value;
                break;
        }
    }
}
