using System.ClientModel;
using System.ClientModel.Primitives;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// SDK 2.15 keeps its LegacyCompletionClient internal, so /v1/completions and raw bodies go through
/// the SDK's own pipeline (its transport, auth policy and error handling).
/// </summary>
internal static class SdkPipeline
{
    public static async Task<PipelineResponse> PostAsync(ClientPipeline pipeline, Uri baseUri, string path, string body)
    {
        using PipelineMessage message = pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(baseUri, path);
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromString(body));
        message.BufferResponse = true;
        await pipeline.SendAsync(message);
        return message.ExtractResponse()!;
    }
}
