namespace Loom.Deploy.Tests.Infrastructure;

/// <summary>Helm v4 from scripts/install-helm.sh (installed once per test run).</summary>
public static class Helm
{
    private static readonly Lazy<Task<(string? Path, string? Why)>> Installed = new(InstallAsync);

    /// <summary>The helm binary, or skips the calling test with the reason it is unavailable.</summary>
    public static async Task<string> RequireAsync()
    {
        var (path, why) = await Installed.Value;
        Skip.If(path is null, why);
        return path!;
    }

    public static async Task<ProcessResult> RunAsync(params string[] args)
    {
        var helm = await RequireAsync();
        return await ProcessRunner.RunAsync(helm, args, TimeSpan.FromMinutes(2));
    }

    public static async Task<string> LintAsync(string? valuesFile = null, params string[] sets)
    {
        var r = await RunAsync([.. Args("lint", null, valuesFile, sets), "--strict"]);
        Assert.True(r.ExitCode == 0, r.Describe("helm lint"));
        return r.StdOut;
    }

    public static async Task<string> TemplateAsync(string release, string? valuesFile = null, params string[] sets)
    {
        var r = await RunAsync([.. Args("template", release, valuesFile, sets), "--namespace", "loom-test"]);
        Assert.True(r.ExitCode == 0, r.Describe("helm template"));
        return r.StdOut;
    }

    private static IEnumerable<string> Args(string verb, string? release, string? valuesFile, string[] sets)
    {
        yield return verb;
        if (release is not null)
        {
            yield return release;
        }

        var chart = RepoPaths.Of(DeployContract.ChartDir);
        yield return chart;
        if (valuesFile is not null)
        {
            yield return "--values";
            yield return Path.Combine(chart, valuesFile);
        }

        foreach (var s in sets)
        {
            yield return "--set";
            yield return s;
        }
    }

    private static async Task<(string? Path, string? Why)> InstallAsync()
    {
        var script = RepoPaths.Of(DeployContract.InstallHelmScript);
        var r = await ProcessRunner.RunAsync("bash", [script], TimeSpan.FromMinutes(5));
        if (r.ExitCode == 3)
        {
            var why = "helm is unavailable: " + r.StdErr.Trim();
            Console.WriteLine("SKIP: " + why);
            return (null, why);
        }

        Assert.True(r.ExitCode == 0, r.Describe(script));
        var path = r.StdOut.Trim().Split('\n')[^1].Trim();
        Assert.True(File.Exists(path), $"{script} printed '{path}', which does not exist");
        return (path, null);
    }
}
