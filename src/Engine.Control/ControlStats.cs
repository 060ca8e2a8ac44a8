using Engine.Control.Experiments;
using Engine.Control.Feedback;

namespace Engine.Control;

/// <summary>The cluster's counters as `engine stats` prints them.</summary>
/// <param name="EventsPersisted">Events made durable by sessions (as flushed by the pre-aggregators,
/// so up to one flush interval behind).</param>
/// <param name="Experiments">Each experiment's report.</param>
public sealed record ClusterStats(long EventsPersisted, IReadOnlyList<ExperimentReport> Experiments);

/// <summary>Reads <see cref="ClusterStats"/> from the grains.</summary>
public static class ControlStats
{
    /// <summary>Reads the counters and every experiment's report.</summary>
    public static async Task<ClusterStats> ReadAsync(IGrainFactory grains)
    {
        var persisted = await grains.GetGrain<IClusterCountersGrain>(0).GetEventsPersisted();
        var snapshot = await grains.GetGrain<IExperimentRegistryGrain>(0).GetSnapshot();
        var reports = await Task.WhenAll(snapshot.Experiments.Keys.Order(StringComparer.Ordinal)
            .Select(id => grains.GetGrain<IExperimentGrain>(id).GetReport()));
        return new ClusterStats(persisted, reports);
    }
}
