using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Engine.Control.Storage;

/// <summary>
/// Non-durable grain storage for a single silo (<c>engine serve</c> without Redis): states kept serialized in this
/// process, with the same ETag checks as Orleans' memory storage. Orleans' memory storage routes every read and write
/// through a storage grain (a grain call, a deep copy of the serialized state and their tasks and messages): with a
/// session checkpoint per shopper per minute at 2,000 Recommends/s that was ~0.7 KB of allocation per Recommend
/// (allocation ticks, seventh session). Here each state keeps one byte buffer that later writes overwrite in place (with
/// <see cref="ExactSizeGrainStorageSerializer"/>; a quarter of slack so a state that grows a little keeps it): a
/// checkpoint allocates nothing that lives on, where a new array per write was promoted into gen 2 with every collection
/// (~0.5 KB per Recommend of the survivors that set the length of the GC pauses).
/// </summary>
/// <remarks>Only for a silo that is its own cluster: silos of one cluster would not see each other's states.
/// Thread-safe.</remarks>
public sealed class LocalGrainStorage(IGrainStorageSerializer serializer, IActivatorProvider activators) : IGrainStorage
{
    /// <summary>One state: its bytes are <c>Bytes[..Length]</c>. Guarded by the dictionary's lock.</summary>
    private sealed class Stored
    {
        public byte[] Bytes = [];
        public int Length;
        public string ETag = "";
    }

    private readonly Dictionary<(string State, GrainId Grain), Stored> _states = [];
    private long _etags;

    /// <summary>States held.</summary>
    public int Count
    {
        get { lock (_states) return _states.Count; }
    }

    /// <inheritdoc/>
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        lock (_states) // the bytes may be overwritten by the next write: read them under the lock (reads are rare: activations)
        {
            if (_states.TryGetValue((stateName, grainId), out var stored))
            {
                grainState.State = serializer.Deserialize<T>(new BinaryData(stored.Bytes.AsMemory(0, stored.Length)))!;
                grainState.ETag = stored.ETag;
                grainState.RecordExists = true;
                return Task.CompletedTask;
            }
        }
        grainState.State = activators.GetActivator<T>().Create();
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        // Serialized outside the lock (the state is the caller's until we return), copied in under it.
        var write = new Write(this, (stateName, grainId), grainState.ETag);
        var etag = serializer is ExactSizeGrainStorageSerializer exact
            ? exact.Serialize(grainState.State, write, static (bytes, w) => w.Storage.Store(w.Key, w.ETag, bytes))
            : Store(write.Key, write.ETag, serializer.Serialize(grainState.State).ToMemory().Span);
        grainState.ETag = etag;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    private readonly record struct Write(LocalGrainStorage Storage, (string State, GrainId Grain) Key, string? ETag);

    /// <summary>Checks the ETag and copies <paramref name="bytes"/> into the state's buffer (a larger one when they do not
    /// fit); returns the new ETag.</summary>
    private string Store((string State, GrainId Grain) key, string? etag, ReadOnlySpan<byte> bytes)
    {
        lock (_states)
        {
            Check(key, etag, "write");
            if (!_states.TryGetValue(key, out var stored)) _states[key] = stored = new Stored();
            if (stored.Bytes.Length < bytes.Length) stored.Bytes = new byte[bytes.Length + bytes.Length / 4];
            bytes.CopyTo(stored.Bytes);
            stored.Length = bytes.Length;
            return stored.ETag = (++_etags).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
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
