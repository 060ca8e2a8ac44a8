using System.Collections.Concurrent;
using Orleans.Storage;

namespace Engine.Control.Tests;

/// <summary>
/// A grain store for tests that keeps nothing and records each write it is asked to: per grain key, when and one number
/// read from the state at that moment (<c>measure</c>: state → value, or null for a state it should not record).
/// Records are process-wide, so tests use fresh grain keys.
/// </summary>
internal sealed class RecordingGrainStorage(Func<object?, long?> measure) : IGrainStorage
{
    private static readonly ConcurrentDictionary<string, List<(DateTime At, long Value)>> Seen = new();

    /// <summary>The recorded writes of the grain with key <paramref name="key"/>, oldest first.</summary>
    public static IReadOnlyList<(DateTime At, long Value)> Writes(string key)
    {
        var list = Seen.GetOrAdd(key, _ => []);
        lock (list) return [.. list];
    }

    /// <summary>How many writes were recorded for <paramref name="key"/>.</summary>
    public static int Count(string key) => Writes(key).Count;

    /// <summary>The value recorded by the latest write for <paramref name="key"/>, or -1 before any.</summary>
    public static long Last(string key) => Writes(key) is { Count: > 0 } w ? w[^1].Value : -1;

    /// <summary>Polls the writes of <paramref name="key"/> until <paramref name="done"/> holds for them or
    /// <paramref name="limit"/> has passed (a ceiling for a loaded machine, not a timing assert), and returns them.</summary>
    public static async Task<IReadOnlyList<(DateTime At, long Value)>> WaitFor(string key,
        Func<IReadOnlyList<(DateTime At, long Value)>, bool> done, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        var writes = Writes(key);
        while (!done(writes) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            writes = Writes(key);
        }
        return writes;
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (measure(grainState.State) is { } value)
        {
            var list = Seen.GetOrAdd(grainId.Key.ToString()!, _ => []);
            lock (list) list.Add((DateTime.UtcNow, value));
        }
        grainState.ETag = Guid.NewGuid().ToString("N");
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;
}
