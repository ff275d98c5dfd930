using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// The built-in demo model (a small random-weight Llama with GPT-2's vocabulary size), created on
/// first use in a cache folder (LOOM_CACHE, else ~/.cache/loom). The folder holds config.json,
/// generation_config.json and a <see cref="SeededWeights.MarkerFileName"/> naming the seed: the
/// weights are computed at load, so the runtime writes no weight files. The silo calls this when
/// model.path is empty; the gateway's DemoModel adds the tokenizer files, which only it can write.
/// Same seed, same weights: a silo and a gateway that each create it serve the same model.
/// </summary>
public static class DemoModelFiles
{
    // demo-v2: weights are seeded in memory (demo-v1 folders held model.safetensors).
    public const string Version = "demo-v2";
    public const ulong Seed = 20261128;
    public const DType WeightDType = DType.BF16;

    public static ModelPreset Preset => ModelPresets.Demo;

    public static string CacheRoot =>
        Environment.GetEnvironmentVariable("LOOM_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "loom");

    /// <summary>Returns the demo model's folder, creating it first if needed; <paramref name="addFiles"/>
    /// writes extra files into a freshly created folder before it is published.</summary>
    public static string EnsureCreated(TextWriter? log = null, string? root = null, Action<string>? addFiles = null)
    {
        var dir = Path.Combine(root ?? CacheRoot, Version);
        if (File.Exists(Path.Combine(dir, "config.json"))) return dir;
        log?.WriteLine($"creating the built-in demo model in {dir} (first use only) ...");
        // Write into a scratch folder and rename, so an interrupted first run never leaves half a model.
        var scratch = dir + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(scratch)) Directory.Delete(scratch, true);
        Directory.CreateDirectory(scratch);
        File.WriteAllText(Path.Combine(scratch, "config.json"), HfConfigJson.Config(Preset, WeightDType));
        File.WriteAllText(Path.Combine(scratch, "generation_config.json"), HfConfigJson.GenerationConfig(Preset));
        SeededWeights.WriteMarker(scratch, Seed, WeightDType);
        addFiles?.Invoke(scratch);
        try { Directory.Move(scratch, dir); }
        catch (IOException) when (File.Exists(Path.Combine(dir, "config.json"))) { Directory.Delete(scratch, true); }
        return dir;
    }
}
