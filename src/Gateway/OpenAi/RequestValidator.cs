using Loom.Silo.Configuration;
using Loom.Gateway.Serving;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// The one validation path of a generation request, for HTTP (completions, chat) and gRPC alike:
/// the sampling values, then the input limits of <see cref="LoomGatewayOptions"/>. Each failure is an
/// <see cref="InvalidRequestException"/> (a 400) naming the parameter.
/// </summary>
internal static class RequestValidator
{
    /// <summary>OpenAI's range for a logit_bias value.</summary>
    public const float MaxAbsLogitBias = 100;

    /// <summary>Checks that need no model; run before anything is tokenized.</summary>
    public static void Validate(CommonParams c, int prompts, LoomGatewayOptions limits)
    {
        var s = c.Sampling;
        // max_tokens as given (absent: the least min_tokens allows): it is resolved against the prompt later.
        if ((s with { MaxTokens = c.MaxTokens ?? Math.Max(1, s.MinTokens) }).Validate() is { } bad)
            throw new InvalidRequestException(bad.Message, bad.Param);

        int maxChoices = limits.MaxChoicesPerRequest;
        if (s.N > maxChoices) throw new InvalidRequestException($"'n' must be at most {maxChoices}, got {s.N}.", "n");
        // In 64 bits: prompts × n in int wrapped negative and slipped under the limit.
        long choices = (long)prompts * s.N;
        if (choices > maxChoices)
            throw new InvalidRequestException($"This request asks for {choices} completions ({prompts} prompts × n={s.N}); the limit is {maxChoices}.", "n");

        if (c.Stop.Count > limits.MaxStopStrings)
            throw new InvalidRequestException($"'stop' may hold at most {limits.MaxStopStrings} strings, got {c.Stop.Count}.", "stop");
        foreach (string stop in c.Stop)
        {
            if (stop.Length == 0) throw new InvalidRequestException("'stop' strings must not be empty.", "stop");
            if (stop.Length > limits.MaxStopStringLength)
                throw new InvalidRequestException($"'stop' strings may be at most {limits.MaxStopStringLength} characters long, got one of {stop.Length}.", "stop");
        }

        if (s.StopTokenIds.Count > limits.MaxStopTokenIds)
            throw new InvalidRequestException($"'stop_token_ids' may hold at most {limits.MaxStopTokenIds} ids, got {s.StopTokenIds.Count}.", "stop_token_ids");

        if (s.LogitBias.Count > limits.MaxLogitBias)
            throw new InvalidRequestException($"'logit_bias' may hold at most {limits.MaxLogitBias} entries, got {s.LogitBias.Count}.", "logit_bias");
        foreach (var (id, value) in s.LogitBias)
            if (!(Math.Abs(value) <= MaxAbsLogitBias))
                throw new InvalidRequestException($"'logit_bias' values must be in [-{MaxAbsLogitBias}, {MaxAbsLogitBias}], got {value} for token {id}.", "logit_bias");
    }

    /// <summary>Checks against the served model: token ids within its vocabulary.</summary>
    public static void ValidateForModel(CommonParams c, ServedModelText model)
    {
        foreach (var b in c.Sampling.LogitBias)
            if (b.Token >= model.Info.VocabSize)
                throw new InvalidRequestException($"'logit_bias' token id {b.Token} is out of vocabulary (the model has {model.Info.VocabSize} tokens).", "logit_bias");
    }
}
