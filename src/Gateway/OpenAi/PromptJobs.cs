using Loom.Silo.Routing;
using Loom.Silo.Worker;
using Loom.Gateway.Tokenization;
using Loom.Gateway.Templates;
using Loom.Gateway.Serving;
namespace Loom.Gateway.OpenAi;

/// <summary>
/// Prompts to <see cref="PromptJob"/>s, the same way for /v1/completions, chat and gRPC: text is
/// tokenized with the length check first, token ids are checked against the vocabulary, and
/// max_tokens is resolved against what is left of the context.
/// </summary>
internal static class PromptJobs
{
    /// <summary>
    /// A text prompt's ids. The length check runs while tokenizing: a prompt that cannot leave room
    /// for one generated token is refused as soon as that is known, without tokenizing the rest of
    /// it (<see cref="Tokenization.ITokenizer.TryEncode"/>), so a body of megabytes costs little.
    /// </summary>
    public static int[] Tokenize(ServedModelText model, string text, bool addSpecialTokens, string param)
    {
        int limit = model.Info.MaxModelLen - 1;
        if (!model.Tokenizer.TryEncode(text, addSpecialTokens, limit, out var ids))
            throw ApiException.BadRequest(
                $"This model's maximum context length is {model.Info.MaxModelLen} tokens. However, your prompt has more than {limit} tokens, " +
                "which leaves no room for the completion. Please reduce the length of the prompt.", param, "context_length_exceeded");
        GenerationRunner.CheckPrompt(model, ids, param);
        return ids;
    }

    /// <summary>The jobs of a completions request (HTTP or gRPC): text prompts add special tokens unless asked not to, as vLLM.</summary>
    public static List<PromptJob> ForCompletions(ServedModelText model, IReadOnlyList<PromptInput> prompts, CommonParams common, int defaultMaxTokens)
    {
        RequestValidator.ValidateForModel(common, model);
        var jobs = new List<PromptJob>(prompts.Count);
        foreach (var p in prompts)
        {
            int[] ids;
            if (p.TokenIds is { } given)
            {
                // Token-id prompts are taken as given.
                GenerationRunner.CheckPrompt(model, given, "prompt");
                ids = given;
            }
            else ids = Tokenize(model, p.Text!, common.AddSpecialTokens ?? true, "prompt");
            jobs.Add(new PromptJob(ids, GenerationRunner.Resolve(model, common.Sampling, common.MaxTokens, ids.Length, defaultMaxTokens)));
        }
        return jobs;
    }
}
