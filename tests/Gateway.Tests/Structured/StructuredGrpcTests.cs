using Grpc.Core;
using Grpc.Net.Client;
using Loom.Gateway.Grpc.V1;
using Loom.Gateway.Tests.OpenAi;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.Tests.Structured;

/// <summary>structured_outputs over gRPC: the same spec reaches the worker as over HTTP, and a bad one is INVALID_ARGUMENT naming it.</summary>
public sealed class StructuredGrpcTests
{
    [Fact]
    public async Task StructuredOutputsOverGrpcReachTheWorkerAndBadOnesAreInvalidArgument()
    {
        await using var server = await LoomTestServer.StartAsync();
        using var channel = GrpcChannel.ForAddress(server.GrpcUri);
        var client = new Generation.GenerationClient(channel);
        var request = new GenerateRequest { Text = "x", StructuredOutputs = new StructuredOutputs { Choice = new Choices { Values = { "yes", "no" } } } };
        using (var call = client.Generate(request))
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
        Assert.True(server.Cluster.Requests.TryDequeue(out var sent));
        Assert.Equal(new StructuredOutput(StructuredOutputKind.Choice, """["yes","no"]"""), sent!.Sampling.Structured);

        var bad = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = client.Generate(new GenerateRequest { Text = "x", StructuredOutputs = new StructuredOutputs { Json = """{"type":"object","minProperties":2}""" } });
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Equal("structured_outputs", bad.Trailers.GetValue("param"));
        Assert.Contains("minProperties", bad.Status.Detail);
    }
}
