using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Engine.Control.Storage;

/// <summary>
/// Non-durable grain storage for a single silo (<c>engine serve</c> without Redis): states kept serialized in this
/// process, with the same ETag checks as Orleans' memory storage. Orleans' memory storage routes every read and write
/// through a storage grain (a grain call, a deep copy of the serialized state and their tasks and messages): with a
/// session checkpoint per shopper per minute at 2,000 Recommends/s that was ~0.7 KB of allocation per Recommend
/// (allocation ticks, seventh session). Here a write costs its serialized bytes and an ETag string.
/// </summary>
/// <remarks>Only for a silo that is its own cluster: silos of one cluster would not see each other's states.
/// Thread-safe.</remarks>
public sealed class LocalGrainStorage(IGrainStorageSerializer serializer, IActivatorProvider activators) : IGrainStorage
{
    private readonly Dictionary<(string State, GrainId Grain), (BinaryData Data, string ETag)> _states = [];
    private long _etags;

    /// <summary>States held.</summary>
    public int Count
    {
        get { lock (_states) return _states.Count; }
    }

    /// <inheritdoc/>
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        (BinaryData Data, string ETag) stored;
        bool found;
        lock (_states) found = _states.TryGetValue((stateName, grainId), out stored);
        if (found)
        {
            grainState.State = serializer.Deserialize<T>(stored.Data)!;
            grainState.ETag = stored.ETag;
            grainState.RecordExists = true;
        }
        else
        {
            grainState.State = activators.GetActivator<T>().Create();
            grainState.ETag = null;
            grainState.RecordExists = false;
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var data = serializer.Serialize(grainState.State); // outside the lock: the state is the caller's until we return
        var key = (stateName, grainId);
        string etag;
        lock (_states)
        {
            Check(key, grainState.ETag, "write");
            etag = (++_etags).ToString(System.Globalization.CultureInfo.InvariantCulture);
            _states[key] = (data, etag);
        }
        grainState.ETag = etag;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = (stateName, grainId);
        lock (_states)
        {
            Check(key, grainState.ETag, "clear");
            _states.Remove(key);
        }
        grainState.State = activators.GetActivator<T>().Create();
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }

    /// <summary>The caller must hold the ETag of the stored state (null when there is none): else another activation wrote.</summary>
    private void Check((string State, GrainId Grain) key, string? etag, string operation)
    {
        var storedETag = _states.TryGetValue(key, out var stored) ? stored.ETag : null;
        if (storedETag != etag)
            throw new InconsistentStateException($"{operation} of {key.State} for {key.Grain}: ETag {etag ?? "(none)"} does not match the stored {storedETag ?? "(none)"}",
                storedETag ?? "", etag ?? "");
    }
}
