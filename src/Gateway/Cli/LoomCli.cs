using System.CommandLine;

namespace Loom.Gateway.Cli;

/// <summary>The `loom` command line: `serve` (the default).</summary>
public static class LoomCli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Loom: a distributed LLM serving cluster");
        var serve = ServeCommand.Create();
        root.Subcommands.Add(serve);
        // `loom model generate` was a command before the model writers left the runtime: say where it went.
        if (args is ["model", ..])
        {
            await Console.Error.WriteLineAsync("error: `loom model` is gone; generate models with the developer tools: dotnet run -c Release --project tests/Tools -- model generate PRESET --out DIR");
            return 2;
        }
        // `loom` with no subcommand serves, like `vllm serve` is the common case.
        if (args.Length == 0 || args[0].StartsWith('-') && args[0] is not ("-h" or "--help" or "--version"))
            args = ["serve", .. args];
        return await root.Parse(args).InvokeAsync();
    }
}
