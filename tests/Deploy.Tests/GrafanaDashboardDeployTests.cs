using System.Text.Json;
using System.Text.RegularExpressions;
using Loom.Deploy.Tests.Infrastructure;

namespace Loom.Deploy.Tests;

public sealed partial class GrafanaDashboardDeployTests
{
    [Fact]
    public void DashboardQueriesOnlyVllmMetrics()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Of("deploy/k8s/grafana/loom-dashboard.json")));
        var panels = doc.RootElement.GetProperty("panels").EnumerateArray().ToList();
        Assert.NotEmpty(panels);
        var metrics = new HashSet<string>();
        foreach (var target in panels.SelectMany(p => p.GetProperty("targets").EnumerateArray()))
        {
            var expr = target.GetProperty("expr").GetString()!;
            var names = MetricName().Matches(expr).Select(m => m.Value).ToList();
            Assert.NotEmpty(names);
            metrics.UnionWith(names);
        }

        Assert.Contains("vllm:num_requests_running", metrics);
        Assert.Contains("vllm:num_requests_waiting", metrics);
        Assert.Contains("vllm:time_to_first_token_seconds_bucket", metrics);
    }

    [GeneratedRegex(@"vllm:[a-z_]+")]
    private static partial Regex MetricName();
}
