using Orleans.Metadata;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Loom.Silo.Worker;

/// <summary>
/// Places a grain on the silo whose <c>SiloAddress.ToParsableString()</c> is its key: one worker per
/// silo, never anywhere else. (PreferLocal and role-based placement were tried and do not pin.)
/// </summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class SiloPinnedPlacement : PlacementStrategy
{
    public static SiloPinnedPlacement Instance { get; } = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class SiloPinnedPlacementAttribute() : PlacementAttribute(SiloPinnedPlacement.Instance);

public sealed class SiloPinnedPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var key = target.GrainIdentity.Key.ToString();
        foreach (var silo in context.GetCompatibleSilos(target))
            if (silo.ToParsableString() == key) return Task.FromResult(silo);
        // The silo is gone (or never was): the caller's failover picks another worker.
        throw new SiloUnavailableException($"no active silo {key} for its worker");
    }
}
