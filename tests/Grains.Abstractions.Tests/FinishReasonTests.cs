using Loom.Grains.Abstractions;

namespace Loom.Grains.Abstractions.Tests;

public class FinishReasonTests
{
    [Fact]
    public void FinishReasonsAreDistinct() =>
        Assert.Equal(3, Enum.GetValues<FinishReason>().Distinct().Count());
}
