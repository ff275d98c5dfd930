using System.Text.Json.Serialization;

namespace Loom.Gateway.OpenAi;

// Response shapes, field for field as OpenAI (and vLLM's extras) spell them. Fields OpenAI sends
// as explicit nulls (logprobs, finish_reason in chunks) are kept; optional extras are omitted
// when null so the payloads stay small on the streaming hot path.

public sealed record ErrorBody(string Message, string Type, string? Param, string? Code);

public sealed record ErrorEnvelope(ErrorBody Error);

public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens);

public sealed record ModelCard(string Id, string Object, long Created, string OwnedBy, string Root, string? Parent, int MaxModelLen);

public sealed record ModelList(string Object, IReadOnlyList<ModelCard> Data);

// --- /v1/completions ---

public sealed record CompletionLogprobs(
    IReadOnlyList<string> Tokens,
    IReadOnlyList<float?> TokenLogprobs,
    IReadOnlyList<Dictionary<string, float>?> TopLogprobs,
    IReadOnlyList<int> TextOffset);

public sealed record CompletionChoice(int Index, string Text, CompletionLogprobs? Logprobs, string? FinishReason);

public sealed record CompletionResponse(
    string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage,
    string? SystemFingerprint = null);

// --- /v1/chat/completions ---

public sealed record ChatTopLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes);

public sealed record ChatTokenLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<ChatTopLogprob> TopLogprobs);

public sealed record ChatLogprobs(IReadOnlyList<ChatTokenLogprob> Content, string? Refusal = null);

public sealed record ChatMessage(string Role, string? Content, string? Refusal = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ToolCall>? ToolCalls = null);

public sealed record FunctionCall(string Name, string Arguments);

/// <summary>A tool call in a message: its id, "function", and the function's name and JSON arguments (text).</summary>
public sealed record ToolCall(string Id, string Type, FunctionCall Function);

public sealed record FunctionCallDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Arguments);

/// <summary>A streamed piece of a tool call: the first carries id, type and name; later ones argument text.</summary>
public sealed record ToolCallDelta(int Index,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Id,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Type,
    FunctionCallDelta Function);

public sealed record ChatChoice(int Index, ChatMessage Message, ChatLogprobs? Logprobs, string? FinishReason);

public sealed record ChatCompletionResponse(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage Usage,
    string? SystemFingerprint = null);

public sealed record ChatDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ToolCallDelta>? ToolCalls = null);

public sealed record ChatChunkChoice(int Index, ChatDelta Delta, ChatLogprobs? Logprobs, string? FinishReason);

public sealed record ChatCompletionChunk(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChatChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage,
    string? SystemFingerprint = null);

// --- vLLM utility endpoints ---

public sealed record TokenizeResponse(int Count, int MaxModelLen, IReadOnlyList<int> Tokens,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? TokenStrs);

public sealed record DetokenizeResponse(string Prompt);

/// <summary>vLLM's /version, plus what the reachable workers run on (absent when the cluster could not be asked).</summary>
public sealed record VersionResponse(string Version,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<WorkerDevice>? Workers = null);

/// <summary>A group of workers on the same device and CPU kernels (isa is empty off the CPU).</summary>
public sealed record WorkerDevice(string Device, string Isa, int Count);

/// <summary>Source-generated (reflection-free, trimming-safe) serializers for every response record.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ErrorEnvelope))]
[JsonSerializable(typeof(WorkerDevice))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(CompletionResponse))]
[JsonSerializable(typeof(ChatCompletionResponse))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(TokenizeResponse))]
[JsonSerializable(typeof(DetokenizeResponse))]
[JsonSerializable(typeof(VersionResponse))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;
