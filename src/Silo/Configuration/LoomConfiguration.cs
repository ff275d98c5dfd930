using Microsoft.Extensions.Configuration;

namespace Loom.Silo.Configuration;

/// <summary>A setting that is missing, malformed or out of range; <see cref="Key"/> names it (e.g. engine.block_size).</summary>
public sealed class LoomConfigException(string key, string message) : Exception($"configuration error in '{key}': {message}")
{
    public string Key { get; } = key;
}

/// <summary>
/// Where settings come from, later ones winning: the YAML file (<c>--config FILE</c>, else env
/// <c>LOOM_CONFIG</c>), then <c>LOOM_</c> environment variables (<c>__</c> nests), then switches
/// (<c>--engine:block_size=32</c> or <c>--engine:block_size 32</c>).
/// </summary>
public static class LoomConfiguration
{
    public const string EnvPrefix = "LOOM_";

    // Root keys that are settings; other LOOM_* variables (LOOM_CACHE, LOOM_CONFIG) are not.
    private static readonly string[] Sections = ["model", "engine", "simulated", "cluster", "gateway"];

    public static IConfigurationBuilder AddLoomConfiguration(this IConfigurationBuilder builder, string[] args)
    {
        var file = ConfigFile(args);
        if (file is not null)
        {
            var full = Path.GetFullPath(file);
            if (!File.Exists(full)) throw new LoomConfigException("config", $"the configuration file '{full}' does not exist");
            // An explicit provider: a host builder's default one is rooted at the content root and
            // would resolve even an absolute path beneath it.
            builder.Add(new YamlConfigurationSource
            {
                FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(Path.GetDirectoryName(full)!),
                Path = Path.GetFileName(full),
                Optional = false,
                ReloadOnChange = false,
            });
        }
        builder.AddEnvironmentVariables(EnvPrefix);
        builder.AddCommandLine(args);
        return builder;
    }

    /// <summary>Builds the configuration from <paramref name="args"/> and the environment, then binds and validates it.</summary>
    public static LoomOptions Load(string[] args) => Bind(new ConfigurationBuilder().AddLoomConfiguration(args).Build());

    /// <summary>Binds and validates; throws <see cref="LoomConfigException"/> naming the offending key.</summary>
    public static LoomOptions Bind(IConfiguration configuration)
    {
        var options = new LoomOptions();
        // Unknown keys inside a section are errors (a typo must not silently keep a default).
        foreach (var name in Sections)
        {
            var section = configuration.GetSection(name);
            if (!section.Exists()) continue;
            object target = name switch
            {
                "model" => options.Model,
                "engine" => options.Engine,
                "simulated" => options.Simulated,
                "cluster" => options.Cluster,
                _ => options.Gateway,
            };
            // The binder's own ErrorOnUnknownConfiguration ignores [ConfigurationKeyName], so check names here.
            var known = target.GetType().GetProperties()
                .Select(p => p.GetCustomAttributes(typeof(ConfigurationKeyNameAttribute), false).OfType<ConfigurationKeyNameAttribute>().FirstOrDefault()?.Name)
                .OfType<string>().ToHashSet(StringComparer.OrdinalIgnoreCase);
            foreach (var child in section.GetChildren())
                if (!known.Contains(child.Key))
                    throw new LoomConfigException($"{name}.{child.Key.ToLowerInvariant()}", $"unknown setting (known in '{name}': {string.Join(", ", known.Order())})");
            try { section.Bind(target); }
            catch (InvalidOperationException e)
            {
                throw new LoomConfigException(KeyFrom(e.Message, name), e.InnerException?.Message ?? e.Message);
            }
        }
        if (configuration["device"] is { } device) options.Device = device;
        if (options.Validate() is { } bad) throw new LoomConfigException(bad.Key, bad.Message);
        return options;
    }

    private static string? ConfigFile(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--config" && i + 1 < args.Length) return args[i + 1];
            if (args[i].StartsWith("--config=", StringComparison.Ordinal)) return args[i]["--config=".Length..];
        }
        return Environment.GetEnvironmentVariable(EnvPrefix + "CONFIG") is { Length: > 0 } env ? env : null;
    }

    // The binder's messages quote the path ("Failed to convert configuration value at 'engine:block_size' ..."):
    // turn it into the dotted key the YAML uses.
    private static string KeyFrom(string message, string section)
    {
        int a = message.IndexOf(" at '", StringComparison.Ordinal);
        int b = a >= 0 ? message.IndexOf('\'', a + 5) : -1;
        return a < 0 || b < 0 ? section : message[(a + 5)..b].Replace(':', '.').ToLowerInvariant();
    }
}
