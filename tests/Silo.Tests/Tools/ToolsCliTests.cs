using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Cli;

namespace Loom.Silo.Tests.Tools;

/// <summary>The tools project's command line, run in-process (it redirects the process-wide console, so one at a time).</summary>
[Collection("Console")]
public sealed class ToolsCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-tools-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (await ToolsCli.RunAsync(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    [Fact]
    public async Task ModelGenerateWritesALoadableModelAndGguf()
    {
        var dir = Path.Combine(_dir, "m");
        var gguf = Path.Combine(_dir, "m.gguf");
        var (code, output, err) = await Run("model", "generate", "tiny-qwen2", "--out", dir, "--dtype", "f16", "--seed", "5", "--gguf", gguf, "--gguf-type", "f32");
        Assert.True(code == 0, err);
        Assert.Contains($"wrote tiny-qwen2 (F16) to {dir} and {gguf}", output);
        Assert.True(new FileInfo(gguf).Length > 0);
        var config = ModelConfig.Load(dir);
        Assert.Equal(ModelArchitecture.Qwen2, config.Architecture);
        using var backend = new CpuBackend(1);
        using var model = LlamaModel.Load(dir, backend);
        Assert.True(model.LinearWeightBytes > 0);
    }

    [Fact]
    public async Task UnknownPresetAndBadDtypeAreClearErrors()
    {
        var (code, _, err) = await Run("model", "generate", "gpt-9", "--out", Path.Combine(_dir, "x"));
        Assert.Equal(2, code);
        Assert.Contains("gpt-9", err);
        Assert.Contains("tiny", err);

        (code, _, err) = await Run("model", "generate", "tiny", "--out", Path.Combine(_dir, "y"), "--dtype", "int4");
        Assert.Equal(2, code);
        Assert.Contains("--dtype", err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "y", "model.safetensors")));
    }

    [Fact]
    public async Task PtxBuildWithoutSourcesOrNvrtcIsAClearError()
    {
        // Without libnvrtc the command says so; with it, a folder without common.cuh is named.
        var (code, _, err) = await Run("ptx", "build", Path.Combine(_dir, "no-such-folder"));
        Assert.NotEqual(0, code);
        Assert.True(err.Contains("libnvrtc", StringComparison.Ordinal) || err.Contains("common.cuh", StringComparison.Ordinal), err);
    }
}
