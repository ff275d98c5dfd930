using System.Diagnostics;
using System.Text;

namespace Loom.Deploy.Tests.Infrastructure;

public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    public string Describe(string what) => $"{what} exited {ExitCode}\n--- stdout ---\n{StdOut}\n--- stderr ---\n{StdErr}";
}

public static class ProcessRunner
{
    public static async Task<ProcessResult> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout, string? workingDir = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDir ?? RepoPaths.Root,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + file);
        var (o, e) = (new StringBuilder(), new StringBuilder());
        p.OutputDataReceived += (_, d) => { if (d.Data is not null) { lock (o) { o.AppendLine(d.Data); } } };
        p.ErrorDataReceived += (_, d) => { if (d.Data is not null) { lock (e) { e.AppendLine(d.Data); } } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', psi.ArgumentList)} ran past {timeout}");
        }

        p.WaitForExit();
        lock (o)
        {
            lock (e)
            {
                return new ProcessResult(p.ExitCode, o.ToString(), e.ToString());
            }
        }
    }
}
