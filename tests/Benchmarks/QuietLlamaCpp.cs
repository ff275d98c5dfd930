using System.Runtime.CompilerServices;
using LLama.Native;

namespace Loom.Benchmarks;

internal static class QuietLlamaCpp
{
    /// <summary>llama.cpp logs every model load at length; keep only its errors.</summary>
    [ModuleInitializer]
    internal static void Install() =>
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            if (level == LLamaLogLevel.Error) Console.Error.Write(message);
        });
}
