using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Loom.Gateway.OpenAi;
using Loom.Gateway.Serving;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>
/// A byte-level test tokenizer: ids 0..255 are UTF-8 bytes, so a multi-byte character always spans
/// several tokens (the hard case for incremental detokenization), plus three special tokens.
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    public const int Eos = 256, ImStart = 257, ImEnd = 258;
    private static readonly string[] Specials = ["<|eos|>", "<|im_start|>", "<|im_end|>"];

    public int VocabSize => 259;
    public string? BosToken => null;
    public string? EosToken => Specials[0];

    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        int i = 0;
        while (i < text.Length)
        {
            int special = Array.FindIndex(Specials, s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0);
            if (special >= 0) { ids.Add(256 + special); i += Specials[special].Length; continue; }
            int next = text.IndexOf("<|", i + 1, StringComparison.Ordinal);
            int end = next < 0 ? text.Length : next;
            ids.AddRange(Encoding.UTF8.GetBytes(text[i..end]).Select(b => (int)b));
            i = end;
        }
        return [.. ids];
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var sb = new StringBuilder();
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (id < 256) { bytes.Add((byte)id); continue; }
            sb.Append(Encoding.UTF8.GetString([.. bytes]));
            bytes.Clear();
            if (!skipSpecialTokens) sb.Append(Specials[id - 256]);
        }
        return sb.Append(Encoding.UTF8.GetString([.. bytes])).ToString();
    }

    public bool IsSpecial(int id) => id >= 256;
    public int? TokenToId(string token) => Array.IndexOf(Specials, token) is >= 0 and var i ? 256 + i : null;
}

/// <summary>ChatML-like template; records the kwargs it saw; "RAISE" in a message plays raise_exception.</summary>
public sealed class TestChatTemplate : IChatTemplate
{
    public IReadOnlyDictionary<string, object?>? LastKwargs { get; private set; }
    public string? LastToolsJson { get; private set; }

    public string Render(string messagesJson, bool addGenerationPrompt, string? toolsJson = null, IReadOnlyDictionary<string, object?>? extraKwargs = null)
    {
        LastKwargs = extraKwargs;
        LastToolsJson = toolsJson;
        var sb = new StringBuilder();
        using var doc = JsonDocument.Parse(messagesJson);
        foreach (var m in doc.RootElement.EnumerateArray())
        {
            string content = m.GetProperty("content").GetString() ?? "";
            // raise_exception surfaces from ChatTemplate as a ChatTemplateException: the user's fault, a 400.
            if (content.Contains("RAISE")) throw new ChatTemplateException("Conversation roles must alternate user/assistant");
            // Anything else escaping a template is the server's fault: a 500 that says nothing internal.
            if (content.Contains("CRASH")) throw new ArgumentOutOfRangeException("index", "template internals at 0x7f3a");
            sb.Append("<|im_start|>").Append(m.GetProperty("role").GetString()).Append('\n').Append(content).Append("<|im_end|>\n");
        }
        if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n");
        if (extraKwargs?.TryGetValue("enable_thinking", out var t) == true && t is false) sb.Append("<think>\n\n</think>\n\n");
        return sb.ToString();
    }
}

public sealed class TestTextFactory(TestChatTemplate? template, ITokenizer? tokenizer = null) : IModelTextFactory
{
    public ITokenizer CreateTokenizer(ModelInfo info) => tokenizer ?? new ByteTokenizer();
    public IChatTemplate? CreateChatTemplate(ModelInfo info) => template;
}

/// <summary>
/// A deterministic cluster: each sample writes <see cref="Script"/>'s text byte by byte
/// (interleaving samples), then EOS; honours max_tokens, stop_token_ids and ignore_eos; fakes
/// logprobs; and records requests and whether each was cancelled (what a worker abort needs).
/// </summary>
public sealed class FakeGenerationClient : IGenerationClient
{
    public ModelInfo Info { get; set; } = new("test-model", "LlamaForCausalLM", 256, 259, [ByteTokenizer.Eos], "{}", "{}");
    public Func<GenerationRequest, int, string> Script { get; set; } = (_, i) => i == 0 ? "Hello, world." : $"Sample {i} says hi.";
    public TimeSpan TokenDelay { get; set; }
    public Exception? Throw { get; set; }
    /// <summary>While set and not completed, every request waits here before its first token (holds its gateway slot).</summary>
    public TaskCompletionSource? Hold { get; set; }
    public Func<IReadOnlyList<WorkerStats>>? Stats { get; set; } = () => [new(2, 1, 100, 60, 40, 5, 0.4, 1000, 250, 3, 0, 0)];
    public bool EndStreamEarly { get; set; }
    public string? FailWith { get; set; }

    public ConcurrentQueue<GenerationRequest> Requests { get; } = new();
    public ConcurrentDictionary<string, bool> Cancelled { get; } = new();
    public ConcurrentDictionary<string, bool> Completed { get; } = new();

    public Task<ModelInfo> GetModelInfoAsync(CancellationToken cancellationToken) => Task.FromResult(Info);

    public Task<IReadOnlyList<WorkerStats>> GetWorkerStatsAsync(CancellationToken cancellationToken) =>
        Stats is { } s ? Task.FromResult(s()) : throw new TimeoutException("cluster unreachable");

    public async IAsyncEnumerable<TokenDelta> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken ct)
    {
        Requests.Enqueue(request);
        if (Throw is { } t) throw t;
        if (Hold is { } hold) await hold.Task.WaitAsync(ct);
        var s = request.Sampling;
        var scripts = Enumerable.Range(0, s.N).Select(i => new ByteTokenizer().Encode(Script(request, i)).ToList()).ToArray();
        var done = new bool[s.N];
        try
        {
            for (int step = 0; done.Contains(false); step++)
            {
                if (TokenDelay > TimeSpan.Zero) await Task.Delay(TokenDelay, ct);
                ct.ThrowIfCancellationRequested();
                if (FailWith is not null && step == 2) { yield return new TokenDelta(0, -1, null, null, FinishReason.Abort); yield break; }
                for (int i = 0; i < s.N; i++)
                {
                    if (done[i]) continue;
                    int token = step < scripts[i].Count ? scripts[i][step] : s.IgnoreEos ? ' ' : ByteTokenizer.Eos;
                    FinishReason? finish = null;
                    if ((token == ByteTokenizer.Eos || s.StopTokenIds.Contains(token)) && step + 1 >= s.MinTokens) finish = FinishReason.Stop;
                    else if (step + 1 >= s.MaxTokens) finish = FinishReason.Length;
                    if (EndStreamEarly && step == 1) yield break;
                    float lp = -0.25f * (i + 1);
                    IReadOnlyList<TokenLogprob>? top = s.Logprobs is > 0
                        ? [.. Enumerable.Range(0, s.Logprobs.Value).Select(k => new TokenLogprob(k == 0 ? token : 'a' + k, lp - k))]
                        : null;
                    done[i] = finish is not null;
                    yield return new TokenDelta(i, token, s.Logprobs is null ? null : lp, top, finish);
                }
            }
            Completed[request.RequestId] = true;
        }
        finally
        {
            if (ct.IsCancellationRequested || !Completed.ContainsKey(request.RequestId)) Cancelled[request.RequestId] = true;
        }
    }
}
