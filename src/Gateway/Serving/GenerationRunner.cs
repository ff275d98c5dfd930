using Loom.Silo.Routing;
using Loom.Silo.Worker;
using Loom.Gateway.OpenAi;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Loom.Gateway.Metrics;
using Loom.Gateway.Serving;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.Serving;

/// <summary>One prompt to generate from: its token ids and its resolved sampling parameters.</summary>
public sealed record PromptJob(int[] TokenIds, SamplingParams Sampling);

/// <summary>What to do with the text: stop strings, special tokens, whether the stop text stays.</summary>
public sealed record TextPlan(IReadOnlyList<string> Stop, bool IncludeStopStrInOutput, bool SkipSpecialTokens);

/// <summary>One generated token with the log-probabilities the worker returned (when asked).</summary>
public sealed record GeneratedToken(int Id, float? Logprob, IReadOnlyList<TokenLogprob>? TopLogprobs);

/// <summary>
/// New output for one choice (choice = prompt index × n + sample index): final text, the tokens it
/// came from, and the finish reason on the last update of the choice.
/// </summary>
public sealed record ChoiceUpdate(int Choice, string Text, IReadOnlyList<GeneratedToken> Tokens, string? FinishReason);

/// <summary>Token counts of a run, complete once the enumeration has ended.</summary>
public sealed class UsageTally
{
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }
    public Usage ToUsage() => new(PromptTokens, CompletionTokens, PromptTokens + CompletionTokens);
}

/// <summary>
/// Drives the cluster for one API request: starts one GenerateAsync per prompt, merges their
/// deltas, detokenizes each choice incrementally, applies stop strings (cancelling the worker's
/// request once all its samples have stopped), and records metrics. Shared by the completion,
/// chat and gRPC endpoints so all three behave the same.
/// </summary>
public sealed class GenerationRunner(IGenerationClient client, LoomMetrics metrics)
{
    private sealed record Item(int Prompt, TokenDelta? Delta, Exception? Error);

    private sealed class ChoiceState(IncrementalDetokenizer text)
    {
        /// <summary>The choice's text so far, incrementally detokenized with its stop strings applied.</summary>
        public IncrementalDetokenizer Text { get; } = text;
        public bool Finished;
        public long LastTokenTimestamp;
        public List<GeneratedToken> Pending = [];
    }

    /// <summary>
    /// Enumerate to run. The first MoveNextAsync surfaces admission failures (overload, bad input)
    /// before anything is sent, so callers can still answer with an HTTP error.
    /// </summary>
    public async IAsyncEnumerable<ChoiceUpdate> RunAsync(
        string requestId, ServedModelText model, IReadOnlyList<PromptJob> jobs, TextPlan text, bool wantTokens,
        UsageTally usage, [EnumeratorCancellation] CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        int n = jobs[0].Sampling.N;
        var channel = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true });
        using var all = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var perPrompt = new CancellationTokenSource[jobs.Count];
        var choices = new ChoiceState[jobs.Count * n];
        var finishedPerPrompt = new int[jobs.Count];
        var stopIds = new HashSet<int>[jobs.Count];
        var pumps = new Task[jobs.Count];
        bool firstToken = true, completed = false;
        metrics.RequestStarted();
        try
        {
            for (int p = 0; p < jobs.Count; p++)
            {
                usage.PromptTokens += jobs[p].TokenIds.Length;
                stopIds[p] = [.. model.Info.EosTokenIds, .. jobs[p].Sampling.StopTokenIds];
                for (int i = 0; i < n; i++)
                    choices[p * n + i] = new ChoiceState(new IncrementalDetokenizer(model.Tokenizer, text.SkipSpecialTokens,
                        text.Stop.Count > 0 ? new StopStringMatcher(text.Stop, text.IncludeStopStrInOutput) : null, jobs[p].TokenIds));
                perPrompt[p] = CancellationTokenSource.CreateLinkedTokenSource(all.Token);
            }
            for (int p = 0; p < jobs.Count; p++)
                pumps[p] = PumpAsync(new GenerationRequest(jobs.Count == 1 ? requestId : $"{requestId}-{p}", jobs[p].TokenIds, jobs[p].Sampling),
                    p, channel.Writer, perPrompt[p].Token);

            int open = jobs.Count;
            while (open > 0)
            {
                var item = await channel.Reader.ReadAsync(ct);
                if (item.Error is { } error) ExceptionDispatchInfo.Throw(error);
                if (item.Delta is not { } d)
                {
                    open--;
                    if (finishedPerPrompt[item.Prompt] < n)
                        throw new GenerationFailedException("the worker's stream ended before every sequence finished");
                    continue;
                }
                if (d.Index < 0 || d.Index >= n) throw new GenerationFailedException($"the worker sent sample index {d.Index} for n={n}");
                var c = choices[item.Prompt * n + d.Index];
                if (c.Finished) continue; // a sample already cut by a stop string; its siblings still run

                string piece = "";
                if (d.TokenId >= 0)
                {
                    long now = Stopwatch.GetTimestamp();
                    if (firstToken) { metrics.TimeToFirstToken.Observe(Stopwatch.GetElapsedTime(start, now).TotalSeconds); firstToken = false; }
                    if (c.LastTokenTimestamp != 0) metrics.InterTokenLatency.Observe(Stopwatch.GetElapsedTime(c.LastTokenTimestamp, now).TotalSeconds);
                    c.LastTokenTimestamp = now;
                    metrics.AddGenerationToken();
                    usage.CompletionTokens++;
                    if (wantTokens) c.Pending.Add(new GeneratedToken(d.TokenId, d.Logprob, d.TopLogprobs));
                    // An EOS or stop token ends the text without appearing in it (vLLM's rule).
                    bool stopToken = d.Finish == FinishReason.Stop && !text.IncludeStopStrInOutput && stopIds[item.Prompt].Contains(d.TokenId);
                    if (!stopToken) piece = c.Text.Add(d.TokenId).Text;
                }
                if (d.Finish == FinishReason.Abort)
                    throw new GenerationFailedException("the worker aborted the request");

                string? finish = null;
                if (c.Text.Stopped) finish = "stop";
                else if (d.Finish is { } f)
                {
                    piece += c.Text.Flush();
                    finish = c.Text.Stopped || f == FinishReason.Stop ? "stop" : "length";
                }
                if (finish is not null)
                {
                    c.Finished = true;
                    metrics.SequenceFinished(finish);
                    // Every sample of this prompt is done because of stop strings: free the worker now.
                    if (++finishedPerPrompt[item.Prompt] == n && d.Finish is null) perPrompt[item.Prompt].Cancel();
                }
                if (piece.Length > 0 || finish is not null)
                {
                    var tokens = c.Pending;
                    c.Pending = [];
                    yield return new ChoiceUpdate(item.Prompt * n + d.Index, piece, tokens, finish);
                }
            }
            completed = true;
            metrics.E2eLatency.Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        finally
        {
            metrics.RequestEnded();
            if (!completed && ct.IsCancellationRequested)
                foreach (var c in choices) if (c is { Finished: false }) metrics.SequenceFinished("abort");
            metrics.AddPromptTokens(usage.PromptTokens);
            // Cancelling the pumps is what tells the workers to abort and free their KV blocks.
            await all.CancelAsync();
            foreach (var t in pumps) if (t is not null) await t.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            foreach (var cts in perPrompt) cts?.Dispose();
        }
    }

    private async Task PumpAsync(GenerationRequest request, int prompt, ChannelWriter<Item> writer, CancellationToken ct)
    {
        // Yield first so a synchronous client (or a slow first MoveNext) never blocks starting the other prompts.
        await Task.Yield();
        try
        {
            await foreach (var d in client.GenerateAsync(request, ct).WithCancellation(ct))
                writer.TryWrite(new Item(prompt, d, null));
            writer.TryWrite(new Item(prompt, null, null));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            writer.TryWrite(new Item(prompt, null, null));
        }
        catch (Exception e)
        {
            writer.TryWrite(new Item(prompt, null, e));
        }
    }

    /// <summary>Tokens a text prompt becomes, and the limits every prompt must respect.</summary>
    public static void CheckPrompt(ServedModelText model, int[] ids, string param)
    {
        if (ids.Length == 0) throw ApiException.BadRequest("The prompt is empty.", param);
        foreach (int id in ids)
            if (id < 0 || id >= model.Info.VocabSize)
                throw ApiException.BadRequest($"Token id {id} is out of vocabulary (the model has {model.Info.VocabSize} tokens).", param);
        if (ids.Length >= model.Info.MaxModelLen)
            throw ApiException.BadRequest(
                $"This model's maximum context length is {model.Info.MaxModelLen} tokens. However, your prompt has {ids.Length} tokens, " +
                "which leaves no room for the completion. Please reduce the length of the prompt.", param, "context_length_exceeded");
    }

    /// <summary>
    /// max_tokens against max_model_len, as vLLM does: absent means "to the end of the context"
    /// (or OpenAI's legacy default of 16 for completions); too many is a 400 naming the limit.
    /// </summary>
    public static SamplingParams Resolve(ServedModelText model, SamplingParams s, int? maxTokens, int promptLen, int? defaultMax)
    {
        int room = model.Info.MaxModelLen - promptLen;
        int resolved = maxTokens ?? Math.Min(defaultMax ?? room, room);
        if (resolved > room)
            throw ApiException.BadRequest(
                $"This model's maximum context length is {model.Info.MaxModelLen} tokens. However, you requested {promptLen + resolved} tokens " +
                $"({promptLen} in the prompt, {resolved} for the completion). Please reduce the length of the prompt or max_tokens.",
                "max_tokens", "context_length_exceeded");
        var r = s with { MaxTokens = resolved };
        if (r.Validate() is { } bad) throw ApiException.BadRequest(bad.Message, bad.Param);
        return r;
    }

    /// <summary>The text of one token for logprobs (special tokens shown, as OpenAI does).</summary>
    public static string TokenText(ITokenizer tokenizer, int id) => tokenizer.Decode([id], skipSpecialTokens: false);
}
