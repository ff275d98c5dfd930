using System.Net;
using System.Net.Sockets;

namespace Loom.Testing;

/// <summary>Host helpers the test projects share (linked into each as source).</summary>
internal static class TestHost
{
    public static int FreePort() => FreePorts(1)[0];

    /// <summary>Distinct free ports: every listener stays open until all are chosen, so none repeats.</summary>
    public static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Any, 0)).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally { listeners.ForEach(l => l.Stop()); }
    }

    /// <summary>The first executable named <paramref name="tool"/> on PATH (then the usual system folders), or null.</summary>
    public static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"])
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
}
