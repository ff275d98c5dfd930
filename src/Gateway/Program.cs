using Loom.Gateway.Cli;

return await LoomCli.RunAsync(args);
