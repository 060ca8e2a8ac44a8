namespace Engine.Control.Feedback;

/// <summary>Pre-aggregator (after GPSTracker's PushNotifierGrain): local to each silo. Sessions add to
/// the silo's <see cref="FeedbackBuffer"/> directly; this grain is the entry for callers outside the
/// silo (and for tests to flush now). <see cref="FeedbackFlusher"/> empties the buffer on a timer.</summary>
[StatelessWorker]
internal sealed class FeedbackAggregatorGrain(FeedbackBuffer buffer, FeedbackFlusher flusher) : Grain, IFeedbackAggregatorGrain
{
    Task IFeedbackAggregatorGrain.Add(IReadOnlyList<FeedbackSignal> signals)
    {
        flusher.FlushSoon(buffer.Add(signals, 0, []));
        return Task.CompletedTask;
    }

    Task IFeedbackAggregatorGrain.AddSessionActivity(long eventsPersisted, IReadOnlyList<string> viewedProducts)
    {
        buffer.Add([], eventsPersisted, viewedProducts);
        return Task.CompletedTask;
    }

    Task IFeedbackAggregatorGrain.Flush() => flusher.FlushAsync();
}
