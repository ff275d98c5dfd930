using Loom.Silo.Hosting;
using Loom.Silo.Worker;

// The silo host: `dotnet Loom.Silo.dll [--config loom.yaml] [--cluster:redis=host:6379 ...]`.
return await LoomSiloHost.RunAsync(args);
