using Engine.Protocol.Messages;

namespace Engine.Cli.Hosting;

/// <summary>
/// The process's garbage-collector counters as Stats entries (<c>process.gc_*</c>): bytes allocated, collections per
/// generation, total pause time and heap size. Cumulative since start, so a benchmark reads them before and after a run
/// and divides the difference by the requests served (bench/recommend-pair.sh prints allocated bytes per request and
/// collections per 10,000 requests): the robust side of a latency comparison on a loaded machine. <c>process.gc_server</c>
/// and <c>process.gc_heaps</c> say which collector ran (engine's runtimeconfig asks for Server GC, one heap per core;
/// <c>DOTNET_gcServer=0</c> and <c>DOTNET_GCHeapCount</c> override it).
/// </summary>
public static class ProcessGcStats
{
    /// <summary>Adds the counters to <paramref name="entries"/>.</summary>
    public static void Collect(ICollection<StatEntry> entries)
    {
        entries.Add(new StatEntry { Name = "process.gc_server", Value = System.Runtime.GCSettings.IsServerGC ? 1 : 0 });
        entries.Add(new StatEntry { Name = "process.gc_heaps", Value = HeapCount });
        entries.Add(new StatEntry { Name = "process.gc_allocated_bytes", Value = GC.GetTotalAllocatedBytes(precise: false) });
        entries.Add(new StatEntry { Name = "process.gc_gen0", Value = GC.CollectionCount(0) });
        entries.Add(new StatEntry { Name = "process.gc_gen1", Value = GC.CollectionCount(1) });
        entries.Add(new StatEntry { Name = "process.gc_gen2", Value = GC.CollectionCount(2) });
        entries.Add(new StatEntry { Name = "process.gc_pause_ms", Value = GC.GetTotalPauseDuration().TotalMilliseconds });
        entries.Add(new StatEntry { Name = "process.gc_heap_bytes", Value = GC.GetGCMemoryInfo().HeapSizeBytes });
        entries.Add(new StatEntry { Name = "process.gc_last_ephemeral_promoted_bytes", Value = GC.GetGCMemoryInfo(GCKind.Ephemeral).PromotedBytes });
        GcEventStats.Collect(entries); // opt-in (ENGINE_GC_EVENTS): collections by reason, promoted bytes, LOH allocations
    }

    /// <summary>GC heaps: the configured count under Server GC (0 in the configuration means one per core), 1 under
    /// workstation GC.</summary>
    private static long HeapCount
    {
        get
        {
            if (!System.Runtime.GCSettings.IsServerGC) return 1;
            var configured = GC.GetConfigurationVariables().TryGetValue("HeapCount", out var v) ? Convert.ToInt64(v) : 0;
            return configured > 0 ? configured : Environment.ProcessorCount;
        }
    }
}
