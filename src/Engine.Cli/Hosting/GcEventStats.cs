using System.Diagnostics.Tracing;
using Engine.Protocol.Messages;

namespace Engine.Cli.Hosting;

/// <summary>
/// Opt-in GC diagnostics for <c>engine serve</c> (<c>ENGINE_GC_EVENTS=1</c>; <c>=2</c> adds large-object allocation ticks,
/// <c>=3</c> small-object ones too): a listener
/// on the runtime's GC events that adds to Stats what the plain counters of <see cref="ProcessGcStats"/> cannot say,
/// i.e. what survives and why collections happen, and how long the pauses were: collections per generation and trigger reason
/// (<c>process.gc_events.gen2_reason_alloc_large</c>: a gen-2 collection started because the large-object heap's budget
/// ran out), bytes promoted out of gen 0 and gen 1 (survival), the longest pause and the pauses over 10 and 50 ms by the
/// deepest generation collected in them (<c>process.gc_events.gen1_max_pause_ms</c>; suspension to restart, so a thread
/// descheduled by a loaded machine lengthens it too; <c>process.gc_events.suspend_ms</c> is the part of all pauses spent
/// stopping the threads, before the collection's own work), the bytes the mark phase reached from each kind of root
/// (<c>process.gc_events.marked_from_older_bytes</c>: young objects kept alive by references stored in older ones), and, at level 2, bytes allocated on the large-object heap
/// by type (<c>process.gc_events.loh_alloc.System.Byte[]</c>; sampled every ~100 KB by the runtime), and at level 3 the same
/// for the small-object heap (<c>process.gc_events.soh_alloc.TYPE</c>, the types that allocate most per request: each tick
/// charges ~100 KB to the type of the object that crossed the threshold). bench/recommend-gc-watch.sh
/// and bench/recommend-pair.sh print them when present. Off by default: level 2 costs an event per ~100 KB allocated.
/// </summary>
public sealed class GcEventStats : EventListener
{
    private const string RuntimeProvider = "Microsoft-Windows-DotNETRuntime";
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private const int GCStartId = 1, GCRestartEEEndId = 3, GCHeapStatsId = 4, GCSuspendEEEndId = 8, GCSuspendEEBeginId = 9, GCAllocationTickId = 10, GCMarkWithTypeId = 202;

    private static GcEventStats? s_instance;
    private readonly Lock _gate = new();
    private readonly long[,] _byReason = new long[3, 16];   // [generation, reason] collections
    private readonly double[] _promoted = new double[4];    // bytes promoted out of gen 0, 1 (2, 3: kept in place)
    private readonly Dictionary<string, double> _lohByType = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _sohByType = new(StringComparer.Ordinal);
    private const int MaxTypes = 256;                       // types kept per heap (later new ones are not counted)
    private double _lohAllocated;
    private DateTime _suspendedAt;                          // the current pause began (GCSuspendEEBegin)
    private int _pauseGeneration;                           // deepest generation collected inside the current pause
    private readonly double[] _maxPauseMs = new double[3];  // [generation] longest pause
    private readonly long[,] _longPauses = new long[3, 2];  // [generation, >10 ms / >50 ms] pauses
    private double _pauseMs, _suspendMs, _maxSuspendMs;     // all pauses; the part of them spent stopping threads
    private readonly double[] _markedByRoot = new double[10]; // [root kind] bytes the mark phase reached from that kind of root
    private readonly long[] _gen2ByType = new long[3];      // gen-2 collections: [blocking, background, foreground during a background one]
    private readonly int _level;

    private GcEventStats(int level)
    {
        _level = level;
        // EventListener calls OnEventSourceCreated from its base constructor, before _level is set: enable here.
        foreach (var source in EventSource.GetSources()) if (source.Name == RuntimeProvider) Enable(source);
    }

    /// <summary>Starts the listener when ENGINE_GC_EVENTS is 1, 2 or 3 (once per process); returns whether it runs.</summary>
    public static bool StartFromEnvironment()
    {
        if (s_instance is not null) return true;
        var level = Environment.GetEnvironmentVariable("ENGINE_GC_EVENTS")?.Trim() switch { "1" => 1, "2" => 2, "3" => 3, _ => 0 };
        if (level == 0) return false;
        s_instance = new GcEventStats(level);
        return true;
    }

    /// <inheritdoc/>
    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == RuntimeProvider && _level > 0) Enable(eventSource);
    }

    private void Enable(EventSource source) =>
        EnableEvents(source, _level >= 2 ? EventLevel.Verbose : EventLevel.Informational, GcKeyword);

    /// <inheritdoc/>
    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.Payload is null || e.PayloadNames is null) return;
        switch (e.EventId)
        {
            case GCStartId:
            {
                var depth = Convert.ToInt32(Get(e, "Depth"));
                var reason = Convert.ToInt32(Get(e, "Reason"));
                var type = Convert.ToInt32(Get(e, "Type") ?? 0); // 0 blocking, 1 background, 2 foreground (ephemeral, during a background one)
                lock (_gate)
                {
                    if (depth >= 2) _gen2ByType[Math.Clamp(type, 0, 2)]++;
                    _byReason[Math.Clamp(depth, 0, 2), Math.Clamp(reason, 0, 15)]++;
                    _pauseGeneration = Math.Max(_pauseGeneration, Math.Clamp(depth, 0, 2));
                }
                break;
            }
            case GCSuspendEEBeginId: // a pause begins (a background gen-2 collection has two short ones)
                lock (_gate) { _suspendedAt = e.TimeStamp; _pauseGeneration = 0; }
                break;
            case GCSuspendEEEndId:   // every managed thread has stopped: the rest of the pause is the collection's own work
                lock (_gate)
                {
                    if (_suspendedAt == default) break;
                    var ms = (e.TimeStamp - _suspendedAt).TotalMilliseconds;
                    _suspendMs += ms;
                    _maxSuspendMs = Math.Max(_maxSuspendMs, ms);
                }
                break;
            case GCRestartEEEndId:  // the pause ends: threads run again
                lock (_gate)
                {
                    if (_suspendedAt == default) break;
                    var ms = (e.TimeStamp - _suspendedAt).TotalMilliseconds;
                    _suspendedAt = default;
                    _pauseMs += ms;
                    var g = _pauseGeneration;
                    _maxPauseMs[g] = Math.Max(_maxPauseMs[g], ms);
                    if (ms > 10) _longPauses[g, 0]++;
                    if (ms > 50) _longPauses[g, 1]++;
                }
                break;
            case GCMarkWithTypeId: // one per root kind per collection: what the survivors were reached from
            {
                var kind = Convert.ToInt32(Get(e, "Type"));
                var bytes = Convert.ToDouble(Get(e, "Bytes"));
                if (kind is >= 0 and < 10) lock (_gate) _markedByRoot[kind] += bytes;
                break;
            }
            case GCHeapStatsId:
                lock (_gate)
                {
                    _promoted[0] += Convert.ToDouble(Get(e, "TotalPromotedSize0"));
                    _promoted[1] += Convert.ToDouble(Get(e, "TotalPromotedSize1"));
                }
                break;
            case GCAllocationTickId:
            {
                var kind = Convert.ToInt32(Get(e, "AllocationKind")); // 0 small, 1 large, 2 pinned
                if (kind != 1 && (kind != 0 || _level < 3)) break;
                var amount = Convert.ToDouble(Get(e, "AllocationAmount64") ?? Get(e, "AllocationAmount"));
                var type = Get(e, "TypeName") as string ?? "?";
                lock (_gate)
                {
                    if (kind == 1) _lohAllocated += amount;
                    var byType = kind == 1 ? _lohByType : _sohByType;
                    if (byType.Count < MaxTypes || byType.ContainsKey(type)) byType[type] = byType.GetValueOrDefault(type) + amount;
                }
                break;
            }
        }
    }

    private static object? Get(EventWrittenEventArgs e, string name)
    {
        var i = e.PayloadNames!.IndexOf(name);
        return i >= 0 ? e.Payload![i] : null;
    }

    // The runtime's ETW::GC_ROOT_KIND values (dotnet/runtime src/coreclr/gc/env/gcenv.base.h), in order: "older" is
    // objects reached from older generations through the card table (young objects stored into old ones).
    private static readonly string[] RootNames =
        ["stack", "finalize_queue", "handles", "older", "sizedref", "overflow", "dependent_handles", "new_finalize_queue", "steal", "bgc"];

    private static readonly string[] ReasonNames =
        ["alloc_small", "induced", "low_memory", "empty", "alloc_large", "oos_soh", "oos_loh", "induced_noforce", "stress",
         "lowmem_blocking", "induced_compacting", "lowmem_host", "pm_full", "lowmem_host_blocking", "bgc_tuning_soh", "bgc_tuning_loh"];

    /// <summary>Adds the listener's counts (nothing when it is not running).</summary>
    public static void Collect(ICollection<StatEntry> entries)
    {
        var self = s_instance;
        if (self is null) return;
        lock (self._gate)
        {
            for (var g = 0; g < 3; g++)
                for (var r = 0; r < 16; r++)
                    if (self._byReason[g, r] > 0)
                        entries.Add(new StatEntry { Name = $"process.gc_events.gen{g}_reason_{ReasonNames[r]}", Value = self._byReason[g, r] });
            for (var g = 0; g < 3; g++)
            {
                entries.Add(new StatEntry { Name = $"process.gc_events.gen{g}_max_pause_ms", Value = self._maxPauseMs[g] });
                entries.Add(new StatEntry { Name = $"process.gc_events.gen{g}_pauses_over_10ms", Value = self._longPauses[g, 0] });
                entries.Add(new StatEntry { Name = $"process.gc_events.gen{g}_pauses_over_50ms", Value = self._longPauses[g, 1] });
            }
            entries.Add(new StatEntry { Name = "process.gc_events.gen2_blocking", Value = self._gen2ByType[0] });
            entries.Add(new StatEntry { Name = "process.gc_events.gen2_background", Value = self._gen2ByType[1] });
            entries.Add(new StatEntry { Name = "process.gc_events.pause_ms", Value = self._pauseMs });
            entries.Add(new StatEntry { Name = "process.gc_events.suspend_ms", Value = self._suspendMs });
            entries.Add(new StatEntry { Name = "process.gc_events.max_suspend_ms", Value = self._maxSuspendMs });
            for (var k = 0; k < RootNames.Length; k++)
                if (self._markedByRoot[k] > 0)
                    entries.Add(new StatEntry { Name = $"process.gc_events.marked_from_{RootNames[k]}_bytes", Value = self._markedByRoot[k] });
            entries.Add(new StatEntry { Name = "process.gc_events.promoted_gen0_bytes", Value = self._promoted[0] });
            entries.Add(new StatEntry { Name = "process.gc_events.promoted_gen1_bytes", Value = self._promoted[1] });
            if (self._level >= 2)
            {
                entries.Add(new StatEntry { Name = "process.gc_events.loh_alloc_bytes", Value = self._lohAllocated });
                foreach (var (type, bytes) in self._lohByType)
                    entries.Add(new StatEntry { Name = $"process.gc_events.loh_alloc.{type}", Value = bytes });
            }
            foreach (var (type, bytes) in self._sohByType)
                entries.Add(new StatEntry { Name = $"process.gc_events.soh_alloc.{type}", Value = bytes });
        }
    }
}
