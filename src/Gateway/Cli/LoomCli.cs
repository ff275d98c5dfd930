using System.CommandLine;

namespace Loom.Gateway.Cli;

/// <summary>The `loom` command line: `serve` (default) and `model generate`.</summary>
public static class LoomCli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Loom: a distributed LLM serving cluster");
        var serve = new Command("serve", "Serve the OpenAI-compatible API");
        root.Subcommands.Add(serve);
        serve.SetAction(_ => { Console.WriteLine("serve"); return 0; });
        root.SetAction(_ => { Console.WriteLine("serve"); return 0; });
        return await root.Parse(args).InvokeAsync();
    }
}
