namespace Engine.Control.Experiments;

/// <summary>Persisted registry of experiment configs.</summary>
[GenerateSerializer]
public sealed class RegistryState
{
    [Id(0)] public long Version { get; set; }
    [Id(1)] public Dictionary<string, ExperimentConfig> Experiments { get; set; } = [];
}

/// <summary>All configs; enforces mutual exclusion within a layer and pushes each change to the
/// servers' assigners (grain observers, renewed by them on a timer).</summary>
internal sealed class ExperimentRegistryGrain(
    [PersistentState("experiments", ControlStorage.Name)] IPersistentState<RegistryState> state,
    TimeProvider time) : Grain, IExperimentRegistryGrain
{
    /// <summary>An observer not renewed within this time is dropped (its server is gone).</summary>
    internal static readonly TimeSpan SubscriptionLifetime = TimeSpan.FromMinutes(3);

    private readonly Dictionary<IExperimentObserver, DateTimeOffset> _observers = [];

    async Task<long> IExperimentRegistryGrain.Publish(ExperimentConfig config)
    {
        var clash = state.State.Experiments.Values.FirstOrDefault(o =>
            o.Id != config.Id && o.Layer == config.Layer && o.Status != ExperimentStatus.Killed &&
            config.Status != ExperimentStatus.Killed &&
            o.LayerStart < config.LayerEnd && config.LayerStart < o.LayerEnd);
        if (clash is not null)
            throw new ArgumentException($"experiment '{config.Id}' range [{config.LayerStart}, {config.LayerEnd}) overlaps '{clash.Id}' [{clash.LayerStart}, {clash.LayerEnd}) in layer '{config.Layer}'");
        state.State.Experiments[config.Id] = config;
        state.State.Version++;
        await state.WriteStateAsync();
        var snapshot = Snapshot();
        var now = time.GetUtcNow();
        foreach (var (observer, renewed) in _observers.ToArray())
        {
            if (now - renewed > SubscriptionLifetime) { _observers.Remove(observer); continue; }
            observer.OnExperimentsChanged(snapshot); // one-way: a slow server does not hold up the change
        }
        return state.State.Version;
    }

    private ExperimentSnapshot Snapshot() => new(state.State.Version, new Dictionary<string, ExperimentConfig>(state.State.Experiments));

    Task<ExperimentSnapshot> IExperimentRegistryGrain.GetSnapshot() => Task.FromResult(Snapshot());

    Task IExperimentRegistryGrain.Subscribe(IExperimentObserver observer)
    {
        _observers[observer] = time.GetUtcNow();
        return Task.CompletedTask;
    }

    Task IExperimentRegistryGrain.Unsubscribe(IExperimentObserver observer)
    {
        _observers.Remove(observer);
        return Task.CompletedTask;
    }
}
