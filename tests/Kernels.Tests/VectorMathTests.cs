using System.Runtime.Intrinsics;
using Loom.Kernels.Cpu;

namespace Loom.Kernels.Tests;

/// <summary>Accuracy at every width is IsaSelectionTests.ExpIsAccurateAtEveryVectorWidth; this is the edge behaviour.</summary>
public class VectorMathTests
{
    [Fact]
    public void ExpSaturatesInsteadOfProducingNaN()
    {
        var e = VectorMath.Exp(Vector512.Create(float.NegativeInfinity, -1000f, -88f, 0f, 1f, 88f, 88.7f, 100f, 1000f, float.PositiveInfinity, -0f, 2f, -2f, 10f, -10f, 0.5f));
        for (int i = 0; i < 16; i++) Assert.False(float.IsNaN(e[i]), $"lane {i} is NaN");
        Assert.True(e[0] < 1e-37f && e[0] >= 0);
        Assert.Equal(1f, e[3]);
        Assert.Equal(MathF.E, e[4], 6);
        Assert.True(float.IsFinite(e[9]) && e[9] > 1e38f);
    }
}
