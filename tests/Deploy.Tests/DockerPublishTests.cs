using System.Text.RegularExpressions;
using Loom.Deploy.Tests.Infrastructure;
using C = Loom.Deploy.Tests.DeployContract;

namespace Loom.Deploy.Tests;

/// <summary>
/// No Docker engine here: check what the images are made of. Both Dockerfiles
/// publish through deploy/docker/publish.sh; these tests run that same script.
/// </summary>
public sealed partial class DockerPublishTests
{
    [Theory]
    [InlineData(C.GatewayDockerfile, "gateway", C.GatewayDll)]
    [InlineData(C.SiloDockerfile, "silo", C.SiloDll)]
    public void DockerfilesAreMultiStageNonRootAndPublishThroughTheSharedScript(string dockerfile, string component, string dll)
    {
        var text = File.ReadAllText(RepoPaths.Of(dockerfile));
        var stages = FromLine().Matches(text).Select(m => m.Groups[1].Value).ToList();
        Assert.True(stages.Count >= 2, $"{dockerfile} is not multi-stage");
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:10.0", stages[0], StringComparison.Ordinal);
        Assert.Matches($@"RUN {Regex.Escape(C.PublishScript)} {component} {Regex.Escape(C.AppDir)}\b", text);
        Assert.Contains($"ENTRYPOINT [\"dotnet\", \"{dll}\"", text, StringComparison.Ordinal);
        Assert.Matches(@"\bCUDA_CACHE_PATH=/var/cache/loom/cuda\b", text);
        Assert.Matches(@"VOLUME \[""/var/cache/loom/cuda""\]", text);

        // The last USER is a numeric uid (a build arg or the aspnet base's $APP_UID, both 1654, the
        // chart's runAsUser), so the kubelet can verify runAsNonRoot.
        var user = UserLine().Matches(text).Last().Groups[1].Value;
        Assert.Contains(user, new[] { "$APP_UID", "${LOOM_UID}" });
    }

    [Fact]
    public void SiloImageCarriesCudaLibrariesAndTakesTheDriverFromTheHost()
    {
        var text = File.ReadAllText(RepoPaths.Of(C.SiloDockerfile));
        var runtime = FromLine().Matches(text).Last().Groups[1].Value;
        Assert.StartsWith("nvidia/cuda:", runtime, StringComparison.Ordinal);
        Assert.Contains("-runtime-ubuntu", runtime, StringComparison.Ordinal);
        Assert.Matches(@"libcublas-\$\{CUDA_PKG\}", text);
        Assert.Contains("libnccl2", text, StringComparison.Ordinal);
        Assert.DoesNotContain("libcuda1", text, StringComparison.Ordinal);
        Assert.Contains("NVIDIA_DRIVER_CAPABILITIES=compute,utility", text, StringComparison.Ordinal);
        Assert.Contains("NVIDIA_VISIBLE_DEVICES=all", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GatewayPublishSucceeds()
    {
        var r = await Published.GatewayAsync();
        Assert.True(r.ExitCode == 0, r.Describe(C.PublishScript + " gateway"));
        Assert.True(File.Exists(Path.Combine(Published.Dir("gateway"), C.GatewayDll)));
        Assert.True(File.Exists(Path.Combine(Published.Dir("gateway"), Path.ChangeExtension(C.GatewayDll, ".runtimeconfig.json"))), "the gateway must be an executable");
    }

    [Fact]
    public async Task SiloPublishSucceeds()
    {
        var r = await Published.SiloAsync();
        Assert.True(r.ExitCode == 0, r.Describe(C.PublishScript + " silo"));
        Assert.True(File.Exists(Path.Combine(Published.Dir("silo"), C.SiloDll)));
    }

    [GeneratedRegex(@"^FROM\s+(\S+)", RegexOptions.Multiline)]
    private static partial Regex FromLine();

    [GeneratedRegex(@"^USER\s+(\S+)", RegexOptions.Multiline)]
    private static partial Regex UserLine();
}
