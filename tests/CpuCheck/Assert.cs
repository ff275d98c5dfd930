namespace Loom.Kernels.Tests;

/// <summary>The two assertions the shared kernel cases use, without xunit (this is a plain executable).</summary>
internal static class Assert
{
    public static void Equal<T>(T expected, T actual)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual)) Fail($"expected {expected}, got {actual}");
    }

    public static void Equal(float[] expected, float[] actual)
    {
        if (!expected.AsSpan().SequenceEqual(actual)) Fail($"arrays differ (lengths {expected.Length} and {actual.Length})");
    }

    public static void True(bool condition, string? message = null)
    {
        if (!condition) Fail(message ?? "expected true");
    }

    public static T Throws<T>(Action action)
        where T : Exception
    {
        try
        {
            action();
        }
        catch (T e)
        {
            return e;
        }

        throw new CheckFailedException($"expected {typeof(T).Name}");
    }

    public static void Fail(string message) => throw new CheckFailedException(message);
}

internal sealed class CheckFailedException(string message) : Exception(message);
