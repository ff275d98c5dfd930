namespace Loom.Deploy.Tests.Infrastructure;

/// <summary>
/// The gateway and silo published by deploy/docker/publish.sh (the script both
/// Dockerfiles run), once per test run, into a temporary folder.
/// </summary>
public static class Published
{
    private static readonly string Root = Directory.CreateTempSubdirectory("loom-publish-").FullName;
    private static readonly Lazy<Task<ProcessResult>> GatewayRun = new(() => Run("gateway"));
    private static readonly Lazy<Task<ProcessResult>> SiloRun = new(() => Run("silo"));
    private static readonly SemaphoreSlim OneAtATime = new(1, 1);

    public static string Dir(string component) => Path.Combine(Root, component);

    public static Task<ProcessResult> GatewayAsync() => GatewayRun.Value;

    public static Task<ProcessResult> SiloAsync() => SiloRun.Value;

    private static async Task<ProcessResult> Run(string component)
    {
        // Two publishes at once would only fight over two cores.
        await OneAtATime.WaitAsync();
        try
        {
            return await ProcessRunner.RunAsync("bash", [RepoPaths.Of(DeployContract.PublishScript), component, Dir(component)], TimeSpan.FromMinutes(8));
        }
        finally
        {
            OneAtATime.Release();
        }
    }
}
