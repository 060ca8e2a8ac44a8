using Microsoft.Extensions.Logging;

namespace Engine.Control.Catalog;

/// <summary>Persisted state of the catalog clock.</summary>
[GenerateSerializer]
public sealed class CatalogState
{
    [Id(0)] public long Version { get; set; }
    /// <summary>Product id → version of its latest change.</summary>
    [Id(1)] public Dictionary<string, long> Changes { get; set; } = [];
}

/// <summary>The catalog version clock and change log; tells the ranking index of each change.</summary>
internal sealed class CatalogGrain(
    [PersistentState("catalog", ControlStorage.Name)] IPersistentState<CatalogState> state,
    IEnumerable<ICatalogIndexSink> sinks, ILogger<CatalogGrain> log) : Grain, ICatalogGrain
{
    async Task<long> ICatalogGrain.RecordChange(string productId)
    {
        var version = ++state.State.Version;
        state.State.Changes[productId] = version;
        await state.WriteStateAsync();
        foreach (var sink in sinks)
        {
            try { await sink.OnProductChangedAsync(productId, version); }
            catch (Exception ex) { log.LogWarning(ex, "catalog index sink failed for {Product} at version {Version}; it can catch up with GetChangesSince", productId, version); }
        }
        return version;
    }

    Task<long> ICatalogGrain.GetVersion() => Task.FromResult(state.State.Version);

    Task<IReadOnlyList<CatalogChange>> ICatalogGrain.GetChangesSince(long version) =>
        Task.FromResult<IReadOnlyList<CatalogChange>>(state.State.Changes
            .Where(kv => kv.Value > version).OrderBy(kv => kv.Value)
            .Select(kv => new CatalogChange(kv.Key, kv.Value)).ToArray());
}
