namespace Engine.Control.Feedback;

/// <summary>The silo-local intake of feedback: sessions add signals, persisted-event counts and
/// product views here with a lock and no grain call; <see cref="FeedbackFlusher"/> drains it on a
/// timer into the sharded stats grains. A lost buffer (silo crash) loses counts, never events:
/// events are durable in their sessions before anything is added.</summary>
/// <remarks>Before this buffer, each acknowledged session call made one more grain call to the
/// local [StatelessWorker] pre-aggregator: about 18 of 65 µs of CPU per event on the server's
/// one-event-per-customer path (EventIngestionBenchmarks, bench/RESULTS.md).</remarks>
internal sealed class FeedbackBuffer
{
    /// <summary>Buffered exposure signals that make the flusher flush early (<see cref="FeedbackFlusher.FlushSoon"/>):
    /// about 64 ms of traffic at 2,000 Recommends/s. An exposure carries its context and list (~1.5 KB); held for the
    /// whole <see cref="ControlOptions.FeedbackFlushInterval"/> (1 s) they outlived a gen-0 collection or two and were
    /// copied into gen 1 and gen 2 on the way to the stats shard (~2 KB promoted per exposure, measured with an
    /// in-process silo; bench/RESULTS.md), which is what cost Recommend its p99 with exposure logging on.</summary>
    public const int ExposuresPerFlush = 128;

    private readonly Lock _gate = new();
    private List<FeedbackSignal> _signals = [];
    private int _exposures;
    private Dictionary<string, long> _views = [];
    private long _persisted;

    /// <summary>How full the buffer is: signals, and exposure signals among them.</summary>
    public readonly record struct Fill(int Signals, int Exposures);

    /// <summary>Adds one session call's feedback; returns how full the buffer is now.</summary>
    public Fill Add(IReadOnlyList<FeedbackSignal> signals, long eventsPersisted, IReadOnlyList<string> viewedProducts)
    {
        lock (_gate)
        {
            // Index loops: a foreach over the interface would box an enumerator per call (one call per session batch).
            for (var i = 0; i < signals.Count; i++)
            {
                _signals.Add(signals[i]);
                if (signals[i].Kind == FeedbackKind.Exposure) _exposures++;
            }
            _persisted += eventsPersisted;
            for (var i = 0; i < viewedProducts.Count; i++) _views[viewedProducts[i]] = _views.GetValueOrDefault(viewedProducts[i]) + 1;
            return new Fill(_signals.Count, _exposures);
        }
    }

    /// <summary>Takes everything buffered so far.</summary>
    public (List<FeedbackSignal> Signals, long EventsPersisted, Dictionary<string, long> Views) Drain()
    {
        lock (_gate)
        {
            var taken = (_signals, _persisted, _views);
            _signals = [];
            _exposures = 0;
            _persisted = 0;
            _views = [];
            return taken;
        }
    }
}
