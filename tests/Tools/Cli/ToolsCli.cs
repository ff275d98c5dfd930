using System.CommandLine;

namespace Loom.Tools.Cli;

/// <summary>The tools' command line: `model generate` and `ptx build`; tests call it in-process.</summary>
public static class ToolsCli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Loom developer tools: model files and the PTX build (not part of the runtime)");
        var model = new Command("model", "Model files");
        model.Subcommands.Add(ModelGenerateCommand.Create());
        root.Subcommands.Add(model);
        var ptx = new Command("ptx", "The CUDA kernels' committed PTX");
        ptx.Subcommands.Add(PtxBuildCommand.Create());
        root.Subcommands.Add(ptx);
        return await root.Parse(args).InvokeAsync();
    }
}
