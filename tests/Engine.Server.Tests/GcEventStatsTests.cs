using Engine.Cli.Hosting;
using Engine.Protocol.Messages;

namespace Engine.Server.Tests;

/// <summary>The opt-in GC diagnostics of <c>engine serve</c> (<see cref="GcEventStats"/>, ENGINE_GC_EVENTS=1): a forced
/// full collection shows up as an induced gen-2 collection with a pause (the listener is process-wide once started).</summary>
public class GcEventStatsTests
{
    private static Dictionary<string, double> Read()
    {
        var entries = new List<StatEntry>();
        GcEventStats.Collect(entries);
        return entries.ToDictionary(e => e.Name, e => e.Value);
    }

    [Fact]
    public async Task A_forced_full_collection_is_counted_as_an_induced_gen2_collection_with_its_pause()
    {
        var before = Environment.GetEnvironmentVariable("ENGINE_GC_EVENTS");
        try
        {
            Environment.SetEnvironmentVariable("ENGINE_GC_EVENTS", "1");
            Assert.True(GcEventStats.StartFromEnvironment());
        }
        finally
        {
            Environment.SetEnvironmentVariable("ENGINE_GC_EVENTS", before);
        }
        var induced = Read().GetValueOrDefault("process.gc_events.gen2_reason_induced");
        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        // Runtime events reach the listener asynchronously: poll (a ceiling, not a timing assert).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var now = Read();
        while (now.GetValueOrDefault("process.gc_events.gen2_reason_induced") <= induced && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            GC.Collect(2, GCCollectionMode.Forced, blocking: true); // the listener's session may start after the first
            now = Read();
        }
        Assert.True(now.GetValueOrDefault("process.gc_events.gen2_reason_induced") > induced, string.Join(", ", now.Select(kv => $"{kv.Key}={kv.Value}")));
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (now["process.gc_events.gen2_max_pause_ms"] <= 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            now = Read();
        }
        Assert.True(now["process.gc_events.gen2_max_pause_ms"] > 0);
        Assert.True(now.ContainsKey("process.gc_events.promoted_gen1_bytes"));
        Assert.False(now.ContainsKey("process.gc_events.loh_alloc_bytes")); // level 1: no allocation ticks
    }
}
