namespace Engine.Control.Feedback;

/// <summary>Persisted cluster counters.</summary>
[GenerateSerializer]
public sealed class ClusterCountersState
{
    [Id(0)] public long EventsPersisted { get; set; }
}

/// <summary>Cluster-wide counters, fed by the pre-aggregators' flushes (one write per flush per silo).</summary>
internal sealed class ClusterCountersGrain(
    [PersistentState("counters", ControlStorage.Name)] IPersistentState<ClusterCountersState> state) : Grain, IClusterCountersGrain
{
    async Task IClusterCountersGrain.AddPersisted(long events)
    {
        state.State.EventsPersisted += events;
        await state.WriteStateAsync();
    }

    Task<long> IClusterCountersGrain.GetEventsPersisted() => Task.FromResult(state.State.EventsPersisted);
}
