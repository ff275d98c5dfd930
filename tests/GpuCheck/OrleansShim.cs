namespace Orleans;

// The engine's wire records (TokenDelta, SamplingParams, FinishReason, WorkerStats) carry Orleans
// serializer attributes. This native image links those record files to run the engine, but must not
// pull Orleans in (size, and AOT), so these stand-ins satisfy the compiler; nothing here serializes.

[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Enum)]
internal sealed class GenerateSerializerAttribute : Attribute;

[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct)]
internal sealed class ImmutableAttribute : Attribute;

[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class IdAttribute(uint id) : Attribute
{
    public uint Id { get; } = id;
}
