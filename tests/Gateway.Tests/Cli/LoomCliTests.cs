using Loom.Gateway.Cli;
using Loom.Gateway.Demo;
using Loom.Silo.Models;

namespace Loom.Gateway.Tests.Cli;

[Collection("Console")]
public sealed class LoomCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (await LoomCli.RunAsync(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    [Fact]
    public async Task ModelGeneratePointsAtTheToolsProject()
    {
        var (code, _, err) = await Run("model", "generate", "tiny", "--out", Path.Combine(_dir, "m"));
        Assert.Equal(2, code);
        Assert.Contains("tests/Tools", err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "m")));
    }

    [Fact]
    public async Task ServeOnTheDemoModelCompletesAPrompt()
    {
        Environment.SetEnvironmentVariable("LOOM_CACHE", _dir);
        try
        {
            var (code, output, err) = await Run("serve", "--prompt", "Hello there", "--max-tokens", "5");
            Assert.True(code == 0, err);
            Assert.Contains("completion:", output);
            Assert.Contains("5 generated", output);
            Assert.True(File.Exists(Path.Combine(_dir, DemoModel.Version, "tokenizer.json")));
        }
        finally { Environment.SetEnvironmentVariable("LOOM_CACHE", null); }
    }

    [Fact]
    public void DemoModelIsCreatedOnceAndReused()
    {
        var first = DemoModel.EnsureCreated(root: _dir);
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(first, SeededWeights.MarkerFileName));
        var second = DemoModel.EnsureCreated(root: _dir);
        Assert.Equal(first, second);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(second, SeededWeights.MarkerFileName)));
        Assert.Equal(50257, ModelConfig.Load(first).VocabSize);
        // The runtime writes no weight files: the demo's weights are computed from the seed at load.
        Assert.Empty(Directory.EnumerateFiles(first, "*.safetensors*"));
    }
}
