using System.Text.Json;
using Engine.Cli.Hosting;
using Engine.Protocol.Messages;

namespace Engine.Server.Tests;

/// <summary>The collector `engine` runs with (its runtimeconfig, bench/RESULTS.md eighth session: Server GC, one heap per
/// core, no dynamic heap count) and the Stats entries that report which collector a process got.</summary>
public class ProcessGcConfigTests
{
    [Fact]
    public void The_engine_binary_asks_for_server_gc_with_a_fixed_heap_per_core()
    {
        // The CLI's runtimeconfig is copied beside this assembly with the project reference.
        var path = Path.Combine(AppContext.BaseDirectory, "engine.runtimeconfig.json");
        Assert.True(File.Exists(path), $"{path} missing");
        var options = JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.True(options.GetProperty("System.GC.Server").GetBoolean());
        Assert.Equal(0, options.GetProperty("System.GC.DynamicAdaptationMode").GetInt32());
        Assert.False(options.TryGetProperty("System.GC.Concurrent", out var concurrent) && !concurrent.GetBoolean()); // background gen 2 stays on
    }

    [Fact]
    public void Stats_say_which_collector_this_process_runs()
    {
        var entries = new List<StatEntry>();
        ProcessGcStats.Collect(entries);
        var stats = entries.ToDictionary(e => e.Name, e => e.Value);
        var server = System.Runtime.GCSettings.IsServerGC;
        Assert.Equal(server ? 1 : 0, stats["process.gc_server"]);
        if (server) Assert.InRange(stats["process.gc_heaps"], 1, Math.Max(1, Environment.ProcessorCount) * 2);
        else Assert.Equal(1, stats["process.gc_heaps"]);
    }
}
