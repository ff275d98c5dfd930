using Loom.Gateway.OpenAi;
using Loom.Silo.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>The API reads the gateway section the host bound, not a copy of it.</summary>
public sealed class ApiOptionsTests
{
    [Fact]
    public void TheApiReadsTheBoundGatewaySectionItself()
    {
        var bound = LoomConfiguration.Bind(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["gateway:max_stop_strings"] = "3",
            ["gateway:max_body_bytes"] = "2048",
        }).Build());
        using var services = new ServiceCollection().AddLogging().AddLoomApi(bound.Gateway).BuildServiceProvider();
        var seen = services.GetRequiredService<IOptions<LoomGatewayOptions>>().Value;
        Assert.Same(bound.Gateway, seen);
        Assert.Equal((3, 2048L), (seen.MaxStopStrings, seen.MaxBodyBytes));
        // The limits the validator applies are these very settings.
        var e = Assert.Throws<Loom.Gateway.Serving.InvalidRequestException>(() => RequestValidator.Validate(
            new CommonParams("m", 4, new Loom.Grains.Abstractions.SamplingParams(), ["a", "b", "c", "d"], false, false, true, false, null), 1, seen));
        Assert.Equal("stop", e.Param);
    }
}
