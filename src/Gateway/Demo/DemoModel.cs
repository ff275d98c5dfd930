using Loom.Gateway.Tokenization;
using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Gateway.Demo;

/// <summary>
/// The model `loom serve` uses when none is given: a small random-weight Llama with GPT-2's real
/// vocabulary, generated on first use into a cache folder (LOOM_CACHE, else ~/.cache/loom).
/// </summary>
public static class DemoModel
{
    public const string Version = "demo-v1";

    public static ModelPreset Preset => ModelPresets.Get("demo");

    public static string CacheRoot =>
        Environment.GetEnvironmentVariable("LOOM_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "loom");

    /// <summary>Returns the demo model's folder, generating it first if needed.</summary>
    public static string EnsureCreated(TextWriter? log = null, string? root = null)
    {
        var dir = Path.Combine(root ?? CacheRoot, Version);
        if (File.Exists(Path.Combine(dir, "config.json"))) return dir;
        log?.WriteLine($"generating the built-in demo model into {dir} (first use only) ...");
        // Write into a scratch folder and rename, so an interrupted first run never leaves half a model.
        var scratch = dir + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(scratch)) Directory.Delete(scratch, true);
        ModelGenerator.Generate(Preset, scratch, new GenerateOptions { DType = DType.BF16, Seed = 20261128 });
        Gpt2TokenizerFiles.Write(scratch);
        try { Directory.Move(scratch, dir); }
        catch (IOException) when (File.Exists(Path.Combine(dir, "config.json"))) { Directory.Delete(scratch, true); }
        return dir;
    }
}
