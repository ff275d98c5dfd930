using Loom.Silo.Configuration;
using Loom.Gateway.Serving;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// Builds the text side of a served model from what the cluster reports (<see cref="ModelInfo"/>
/// carries tokenizer.json and tokenizer_config.json), so the gateway never needs the model folder.
/// </summary>
public interface IModelTextFactory
{
    ITokenizer CreateTokenizer(ModelInfo info);

    /// <summary>The model's chat template, or null when it has none (chat requests then get a 400).</summary>
    IChatTemplate? CreateChatTemplate(ModelInfo info);
}

/// <summary>The served model as the endpoints use it: its public id, its limits and its text tools.</summary>
public sealed record ServedModelText(string Id, ModelInfo Info, ITokenizer Tokenizer, IChatTemplate? ChatTemplate)
{
    public bool Answers(string? requested) =>
        string.IsNullOrEmpty(requested) || requested == Id || requested == Info.Name;
}

/// <summary>
/// Fetches the model info once and builds the tokenizer and template once (tokenizer.json takes
/// tens of milliseconds to load); a failed fetch is not cached so a cluster that was still
/// starting is asked again on the next request.
/// </summary>
public sealed class ServedModel(IGenerationClient client, IModelTextFactory factory, IOptions<LoomGatewayOptions> options)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ServedModelText? _value;

    public async ValueTask<ServedModelText> GetAsync(CancellationToken ct)
    {
        if (_value is { } v) return v;
        await _gate.WaitAsync(ct);
        try
        {
            if (_value is not null) return _value;
            var info = await client.GetModelInfoAsync(ct);
            var id = string.IsNullOrWhiteSpace(options.Value.ServedModelName) ? info.Name : options.Value.ServedModelName!;
            _value = new ServedModelText(id, info, factory.CreateTokenizer(info), factory.CreateChatTemplate(info));
            return _value;
        }
        finally { _gate.Release(); }
    }

    /// <summary>The served model when <paramref name="requested"/> names it (or is absent); else 404.</summary>
    public async ValueTask<ServedModelText> ResolveAsync(string? requested, CancellationToken ct)
    {
        var m = await GetAsync(ct);
        return m.Answers(requested) ? m : throw ApiException.ModelNotFound(requested!);
    }
}
