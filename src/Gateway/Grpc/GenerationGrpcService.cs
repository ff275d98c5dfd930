using Loom.Silo.Configuration;
using Grpc.Core;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Grpc.V1;
using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.Grpc;

/// <summary>
/// loom.v1.Generation: the completions semantics (same request records, same validator, same
/// defaults, same runner, stop-string and detokenization rules) as a typed server stream, for
/// clients that would rather not parse SSE. The API key is checked by <see cref="ApiKeyInterceptor"/>.
/// </summary>
internal sealed class GenerationGrpcService(
    ServedModel served, GenerationRunner runner, RequestGate gate, IOptions<LoomGatewayOptions> options, ILogger<GenerationGrpcService> log)
    : Generation.GenerationBase
{
    private const int DefaultMaxTokens = 16;

    public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> stream, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        try
        {
            using var slot = gate.Enter();
            var (common, prompt) = ToCommon(request);
            RequestValidator.Validate(common, 1, options.Value);
            var model = await served.ResolveAsync(common.Model, ct);
            var jobs = PromptJobs.ForCompletions(model, [prompt], common, DefaultMaxTokens);
            var text = new TextPlan(common.Stop, common.IncludeStopStrInOutput, common.SkipSpecialTokens);

            var usage = new UsageTally();
            string id = "grpc-" + Guid.NewGuid().ToString("N");
            await foreach (var u in runner.RunAsync(id, model, jobs, text, wantTokens: true, usage, ct))
            {
                var r = new GenerateResponse { Index = u.Choice, Text = u.Text, FinishReason = u.FinishReason ?? "" };
                r.TokenIds.AddRange(u.Tokens.Select(t => t.Id));
                if (common.Sampling.Logprobs is not null) r.Logprobs.AddRange(u.Tokens.Select(t => t.Logprob ?? 0f));
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

    /// <summary>
    /// The request as the HTTP API's records, so both go through one validator. Unset fields take
    /// the HTTP defaults: add_special_tokens true for text prompts, as /v1/completions.
    /// </summary>
    internal static (CommonParams Common, PromptInput Prompt) ToCommon(GenerateRequest request)
    {
        var prompt = request.PromptCase switch
        {
            GenerateRequest.PromptOneofCase.TokenIds => request.TokenIds.Ids.Count > 0
                ? new PromptInput(null, [.. request.TokenIds.Ids])
                : throw new InvalidRequestException("'token_ids' must not be empty.", "prompt"),
            GenerateRequest.PromptOneofCase.Text => new PromptInput(request.Text, null),
            _ => throw new InvalidRequestException("Set 'text' or 'token_ids'.", "prompt"),
        };
        var o = request.Sampling ?? new SamplingOptions();
        var d = new SamplingParams();
        if (o.LogitBias.Keys.FirstOrDefault(id => id < 0, 0) is < 0 and var negative)
            throw new InvalidRequestException($"'logit_bias' keys must be token ids (non-negative integers), got '{negative}'.", "logit_bias");
        var sampling = new SamplingParams
        {
            N = o.HasN ? o.N : d.N,
            Temperature = o.HasTemperature ? o.Temperature : d.Temperature,
            TopP = o.HasTopP ? o.TopP : d.TopP,
            TopK = o.HasTopK ? o.TopK : d.TopK,
            MinP = o.HasMinP ? o.MinP : d.MinP,
            PresencePenalty = o.HasPresencePenalty ? o.PresencePenalty : d.PresencePenalty,
            FrequencyPenalty = o.HasFrequencyPenalty ? o.FrequencyPenalty : d.FrequencyPenalty,
            RepetitionPenalty = o.HasRepetitionPenalty ? o.RepetitionPenalty : d.RepetitionPenalty,
            Seed = o.HasSeed ? o.Seed : null,
            MaxTokens = 1, // resolved against the prompt length later, as for HTTP
            MinTokens = o.HasMinTokens ? o.MinTokens : d.MinTokens,
            StopTokenIds = [.. o.StopTokenIds],
            IgnoreEos = o.IgnoreEos,
            Logprobs = o.HasLogprobs ? o.Logprobs : null,
            Structured = Structured(request.StructuredOutputs),
            LogitBias = TokenBias.Sorted(o.LogitBias),
        };
        var common = new CommonParams(
            request.Model is { Length: > 0 } m ? m : null,
            o.HasMaxTokens ? o.MaxTokens : null,
            sampling,
            [.. request.Stop],
            Stream: true,
            IncludeUsage: true,
            SkipSpecialTokens: !request.KeepSpecialTokens,
            IncludeStopStrInOutput: request.IncludeStopStrInOutput,
            User: null,
            AddSpecialTokens: request.HasAddSpecialTokens ? request.AddSpecialTokens : null);
        return (common, prompt);
    }

    /// <summary>structured_outputs as the HTTP API's record, checked the same way (a bad one is INVALID_ARGUMENT naming structured_outputs).</summary>
    private static StructuredOutput? Structured(StructuredOutputs? so)
    {
        if (so is null) return null;
        StructuredOutput? spec = so.KindCase switch
        {
            StructuredOutputs.KindOneofCase.Json => new(StructuredOutputKind.JsonSchema, so.Json),
            StructuredOutputs.KindOneofCase.JsonObject when so.JsonObject => new(StructuredOutputKind.JsonSchema, "{\"type\":\"object\"}"),
            StructuredOutputs.KindOneofCase.Regex => new(StructuredOutputKind.Regex, so.Regex),
            StructuredOutputs.KindOneofCase.Choice => new(StructuredOutputKind.Choice, System.Text.Json.JsonSerializer.Serialize(so.Choice.Values.ToArray())),
            StructuredOutputs.KindOneofCase.Grammar => new(StructuredOutputKind.Grammar, so.Grammar),
            _ => null,
        };
        if (spec is not null) Loom.Gateway.Structured.StructuredRequests.Check(spec, "structured_outputs");
        return spec;
    }

    /// <summary>The gRPC status of any failure; internal errors are logged and say nothing internal.</summary>
    private RpcException ToRpc(Exception e, ServerCallContext context)
    {
        var api = ApiErrors.Map(e);
        if (api.Status >= 500 && e is not OverloadedException)
            log.LogError(e, "gRPC {Method} failed", context.Method);
        var code = api.Status switch
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
        if (api.Param is not null) trailers.Add("param", api.Param);
        if (api.RetryAfter is { } ra) trailers.Add("retry-after", Math.Max(1, (int)Math.Ceiling(ra.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        return new RpcException(new Status(code, api.Message), trailers);
    }
}
