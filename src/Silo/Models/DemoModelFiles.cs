using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// The built-in demo model's weights (a small random-weight Llama with GPT-2's vocabulary size),
/// generated on first use into a cache folder (LOOM_CACHE, else ~/.cache/loom). The silo calls this
/// when model.path is empty; the gateway's DemoModel adds the tokenizer files, which only it can write.
/// Same seed, same bytes: a silo and a gateway that each generate it get the same model.
/// </summary>
public static class DemoModelFiles
{
    public const string Version = "demo-v1";
    public const ulong Seed = 20261128;

    public static ModelPreset Preset => ModelPresets.Demo;

    public static string CacheRoot =>
        Environment.GetEnvironmentVariable("LOOM_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "loom");

    /// <summary>Returns the demo model's folder, generating the weights first if needed; <paramref name="addFiles"/>
    /// writes extra files into a freshly generated folder before it is published.</summary>
    public static string EnsureCreated(TextWriter? log = null, string? root = null, Action<string>? addFiles = null)
    {
        var dir = Path.Combine(root ?? CacheRoot, Version);
        if (File.Exists(Path.Combine(dir, "config.json"))) return dir;
        log?.WriteLine($"generating the built-in demo model into {dir} (first use only) ...");
        // Write into a scratch folder and rename, so an interrupted first run never leaves half a model.
        var scratch = dir + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(scratch)) Directory.Delete(scratch, true);
        ModelGenerator.Generate(Preset, scratch, new GenerateOptions { DType = DType.BF16, Seed = Seed });
        addFiles?.Invoke(scratch);
        try { Directory.Move(scratch, dir); }
        catch (IOException) when (File.Exists(Path.Combine(dir, "config.json"))) { Directory.Delete(scratch, true); }
        return dir;
    }
}
