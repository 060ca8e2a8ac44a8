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
    private readonly Lock _gate = new();
    private List<FeedbackSignal> _signals = [];
    private Dictionary<string, long> _views = [];
    private long _persisted;

    /// <summary>Adds one session call's feedback; returns the number of signals now buffered.</summary>
    public int Add(IReadOnlyList<FeedbackSignal> signals, long eventsPersisted, IReadOnlyList<string> viewedProducts)
    {
        lock (_gate)
        {
            _signals.AddRange(signals);
            _persisted += eventsPersisted;
            foreach (var p in viewedProducts) _views[p] = _views.GetValueOrDefault(p) + 1;
            return _signals.Count;
        }
    }

    /// <summary>Takes everything buffered so far.</summary>
    public (List<FeedbackSignal> Signals, long EventsPersisted, Dictionary<string, long> Views) Drain()
    {
        lock (_gate)
        {
            var taken = (_signals, _persisted, _views);
            _signals = [];
            _persisted = 0;
            _views = [];
            return taken;
        }
    }
}
