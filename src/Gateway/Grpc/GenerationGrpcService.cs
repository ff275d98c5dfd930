using Grpc.Core;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Grpc.V1;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.Grpc;

/// <summary>
/// loom.v1.Generation: the completions semantics (same runner, same validation, same stop-string
/// and detokenization rules) as a typed server stream, for clients that would rather not parse SSE.
/// </summary>
internal sealed class GenerationGrpcService(ServedModel served, GenerationRunner runner, ApiKeys keys, ILogger<GenerationGrpcService> log)
    : Generation.GenerationBase
{
    private const int DefaultMaxTokens = 16;

    public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> stream, ServerCallContext context)
    {
        CheckKey(context);
        var ct = context.CancellationToken;
        try
        {
            var model = await served.ResolveAsync(request.Model is { Length: > 0 } m ? m : null, ct);
            int[] ids = request.PromptCase switch
            {
                GenerateRequest.PromptOneofCase.TokenIds => [.. request.TokenIds.Ids],
                GenerateRequest.PromptOneofCase.Text => model.Tokenizer.Encode(request.Text, request.AddSpecialTokens),
                _ => throw ApiException.BadRequest("Set 'text' or 'token_ids'.", "prompt"),
            };
            GenerationRunner.CheckPrompt(model, ids, "prompt");
            var o = request.Sampling ?? new SamplingOptions();
            var d = new SamplingParams();
            var sampling = new SamplingParams
            {
                N = o.HasN ? o.N : 1,
                Temperature = o.HasTemperature ? o.Temperature : d.Temperature,
                TopP = o.HasTopP ? o.TopP : d.TopP,
                TopK = o.HasTopK ? o.TopK : d.TopK,
                MinP = o.HasMinP ? o.MinP : d.MinP,
                PresencePenalty = o.HasPresencePenalty ? o.PresencePenalty : 0,
                FrequencyPenalty = o.HasFrequencyPenalty ? o.FrequencyPenalty : 0,
                RepetitionPenalty = o.HasRepetitionPenalty ? o.RepetitionPenalty : 1,
                Seed = o.HasSeed ? o.Seed : null,
                MinTokens = o.HasMinTokens ? o.MinTokens : 0,
                StopTokenIds = [.. o.StopTokenIds],
                IgnoreEos = o.IgnoreEos,
                Logprobs = o.HasLogprobs ? o.Logprobs : null,
            };
            if ((sampling with { MaxTokens = o.HasMaxTokens ? o.MaxTokens : Math.Max(1, sampling.MinTokens) }).Validate() is { } bad)
                throw ApiException.BadRequest(bad.Message, bad.Param);
            var job = new PromptJob(ids, GenerationRunner.Resolve(model, sampling, o.HasMaxTokens ? o.MaxTokens : null, ids.Length, DefaultMaxTokens));
            if (request.Stop.Any(s => s.Length == 0)) throw ApiException.BadRequest("'stop' strings must not be empty.", "stop");
            var text = new TextPlan([.. request.Stop], request.IncludeStopStrInOutput, !request.KeepSpecialTokens);

            var usage = new UsageTally();
            string id = "grpc-" + Guid.NewGuid().ToString("N");
            await foreach (var u in runner.RunAsync(id, model, [job], text, wantTokens: true, usage, ct))
            {
                var r = new GenerateResponse { Index = u.Choice, Text = u.Text, FinishReason = u.FinishReason ?? "" };
                r.TokenIds.AddRange(u.Tokens.Select(t => t.Id));
                if (sampling.Logprobs is not null) r.Logprobs.AddRange(u.Tokens.Select(t => t.Logprob ?? 0f));
                await stream.WriteAsync(r, ct);
            }
            await stream.WriteAsync(new GenerateResponse
            {
                Usage = new V1.Usage { PromptTokens = usage.PromptTokens, CompletionTokens = usage.CompletionTokens, TotalTokens = usage.PromptTokens + usage.CompletionTokens },
            }, ct);
        }
        catch (Exception e) when (e is not RpcException && !(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            throw ToRpc(e, context);
        }
    }

    public override async Task<ModelsResponse> Models(ModelsRequest request, ServerCallContext context)
    {
        CheckKey(context);
        try
        {
            var m = await served.GetAsync(context.CancellationToken);
            return new ModelsResponse { Models = { new V1.ModelCard { Id = m.Id, MaxModelLen = m.Info.MaxModelLen, Architecture = m.Info.Architecture } } };
        }
        catch (Exception e) when (e is not RpcException && !(e is OperationCanceledException && context.CancellationToken.IsCancellationRequested))
        {
            throw ToRpc(e, context);
        }
    }

    private void CheckKey(ServerCallContext context)
    {
        if (!keys.Enabled) return;
        string? header = context.RequestHeaders.GetValue("authorization");
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || !keys.IsValid(header["Bearer ".Length..].Trim()))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "missing or incorrect API key"));
    }

    /// <summary>The gRPC status of any failure; internal errors are logged and say nothing internal.</summary>
    private RpcException ToRpc(Exception exception, ServerCallContext context)
    {
        var e = ApiErrors.Map(exception);
        if (e.Status >= 500 && exception is not Serving.OverloadedException)
            log.LogError(exception, "gRPC {Method} failed", context.Method);
        var code = e.Status switch
        {
            400 or 413 => StatusCode.InvalidArgument,
            401 => StatusCode.Unauthenticated,
            404 => StatusCode.NotFound,
            429 => StatusCode.ResourceExhausted,
            503 => StatusCode.Unavailable,
            504 => StatusCode.DeadlineExceeded,
            _ => StatusCode.Internal,
        };
        var trailers = new Metadata();
        if (e.Param is not null) trailers.Add("param", e.Param);
        if (e.RetryAfter is { } ra) trailers.Add("retry-after", Math.Max(1, (int)Math.Ceiling(ra.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        return new RpcException(new Status(code, e.Message), trailers);
    }
}
