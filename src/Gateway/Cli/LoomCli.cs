using System.CommandLine;

namespace Loom.Gateway.Cli;

/// <summary>The `loom` command line: `serve` (the default) and `model generate`.</summary>
public static class LoomCli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Loom: a distributed LLM serving cluster");
        var serve = ServeCommand.Create();
        root.Subcommands.Add(serve);
        var model = new Command("model", "Model utilities");
        model.Subcommands.Add(ModelGenerateCommand.Create());
        root.Subcommands.Add(model);
        // `loom` with no subcommand serves, like `vllm serve` is the common case.
        if (args.Length == 0 || args[0].StartsWith('-') && args[0] is not ("-h" or "--help" or "--version"))
            args = ["serve", .. args];
        return await root.Parse(args).InvokeAsync();
    }
}
