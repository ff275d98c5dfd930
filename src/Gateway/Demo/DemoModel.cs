using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Loom.Silo.Models;

namespace Loom.Gateway.Demo;

/// <summary>
/// The model `loom serve` uses when none is given: the silo's <see cref="DemoModelFiles"/> folder
/// (config and the seed its weights are computed from) plus GPT-2's real tokenizer files, which the
/// gateway (the owner of text) writes.
/// </summary>
public static class DemoModel
{
    public const string Version = DemoModelFiles.Version;

    public static ModelPreset Preset => DemoModelFiles.Preset;

    public static string CacheRoot => DemoModelFiles.CacheRoot;

    /// <summary>Returns the demo model's folder, creating it first if needed.</summary>
    public static string EnsureCreated(TextWriter? log = null, string? root = null)
    {
        var dir = DemoModelFiles.EnsureCreated(log, root, scratch => Gpt2TokenizerFiles.Write(scratch));
        // A standalone silo may have created the folder alone; add the tokenizer beside its config.
        if (!File.Exists(Path.Combine(dir, "tokenizer.json"))) Gpt2TokenizerFiles.Write(dir);
        return dir;
    }
}
