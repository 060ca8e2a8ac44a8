using Engine.Control.Catalog;
using Engine.Control.Feedback;
using Engine.Control.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engine.Control.Sessions;

/// <summary>One shopper's session. Reentrant so concurrent events share one store write (group
/// commit); each event's update is synchronous, so turns never interleave inside an update.
/// Events arrive two ways: from the silo's event journal (<see cref="JournalEventSink"/>, the default:
/// acknowledged once journaled, applied here in memory and checkpointed every
/// <see cref="ControlOptions.SessionCheckpointInterval"/>; CustomerSessionGrain.Journal.cs), or by a
/// direct <see cref="ICustomerSessionGrain.Record"/> call, acknowledged after this grain's own write.</summary>
[Reentrant]
internal sealed partial class CustomerSessionGrain : Grain, ICustomerSessionGrain
{
    private readonly IPersistentState<SessionState> _state;
    private readonly IProductEmbeddings _embeddings;
    private readonly ControlOptions _options;
    private readonly TimeProvider _time;
    private readonly GroupCommit _commit;
    private readonly FeedbackBuffer _feedback;
    private readonly FeedbackFlusher _flusher;
    private readonly IEventJournal _journal;
    private readonly GroupCommit _drain; // one journal drain at a time; a caller waits for one that started after it asked
    private readonly ILogger<CustomerSessionGrain> _log;
    private HashSet<Guid>? _seen; // mirror of _state.State.SeenEvents for O(1) lookups

    public CustomerSessionGrain(
        [PersistentState("session", ControlStorage.Name)] IPersistentState<SessionState> state,
        IProductEmbeddings embeddings, IOptions<ControlOptions> options, TimeProvider time,
        FeedbackBuffer feedback, FeedbackFlusher flusher, IEventJournal journal, ILogger<CustomerSessionGrain> log)
    {
        _journal = journal;
        _log = log;
        _drain = new GroupCommit(DrainOnceAsync);
        _feedback = feedback;
        _flusher = flusher;
        _state = state;
        _embeddings = embeddings;
        _options = options.Value;
        _time = time;
        _commit = new GroupCommit(WriteCheckpointAsync);
    }

    private SessionState S => _state.State;

    async Task<EventOutcome> ICustomerSessionGrain.Record(CustomerEvent e) => (await RecordAll([e]))[0];

    Task<IReadOnlyList<EventOutcome>> ICustomerSessionGrain.RecordBatch(IReadOnlyList<CustomerEvent> events) => RecordAll(events);

    private async Task<IReadOnlyList<EventOutcome>> RecordAll(IReadOnlyList<CustomerEvent> events)
    {
        // Embeddings are fetched first so that applying the batch below has no await in it.
        var vectors = new float[]?[events.Count];
        for (var i = 0; i < events.Count; i++)
            if (events[i] is { NeedsProduct: true, ProductId: { Length: > 0 } pid })
                vectors[i] = await _embeddings.GetAsync(pid);

        var outcomes = new EventOutcome[events.Count];
        var signals = new List<FeedbackSignal>();
        var views = new List<string>();
        var accepted = 0;
        for (var i = 0; i < events.Count; i++)
        {
            outcomes[i] = Apply(events[i], vectors[i], signals);
            if (outcomes[i] != EventOutcome.Accepted) continue;
            accepted++;
            if (events[i].Kind == EventKind.View) views.Add(events[i].ProductId!);
        }
        await CommitAsync();
        if (accepted > 0 || signals.Count > 0)
            Report(signals, accepted, views);
        return outcomes;
    }

    /// <summary>Hands signals and counts to the silo's feedback buffer (no grain call: the events are
    /// already durable, and the pre-aggregation is local to the silo anyway).</summary>
    private void Report(List<FeedbackSignal> signals, long accepted, IReadOnlyList<string> views) =>
        _flusher.FlushSoon(_feedback.Add(signals, accepted, views));

    async Task<SessionProfile> ICustomerSessionGrain.GetProfile()
    {
        await DrainAsync(); // read-your-writes: every event acknowledged before this call is applied
        var profile = NormalizedProfile();
        var idle = _time.GetUtcNow().UtcTicks - S.LastEventTicks;
        var abandoned = S.Cart.Count > 0 && idle > _options.AbandonAfter.Ticks;
        DateTimeOffset? last = S.EventsApplied > 0 ? new DateTimeOffset(S.LastEventTicks, TimeSpan.Zero) : null;
        return new SessionProfile(CustomerKey, profile, S.Recent.ToArray(),
            new Dictionary<string, int>(S.Cart), abandoned, last, S.EventsApplied);
    }

    async Task<Immutable<float[]>> ICustomerSessionGrain.GetProfileVector()
    {
        await DrainAsync(); // read-your-writes, as GetProfile
        return new Immutable<float[]>(NormalizedProfile());
    }

    /// <summary>A copy of the profile scaled to unit length (the zero vector stays zero). // [dim] f32</summary>
    private float[] NormalizedProfile()
    {
        var profile = (float[])S.Profile.Clone();
        var sum = 0f;
        foreach (var x in profile) sum += x * x;
        var norm = MathF.Sqrt(sum);
        if (norm > 0) for (var i = 0; i < profile.Length; i++) profile[i] /= norm;
        return profile;
    }

    private async Task CommitAsync()
    {
        try
        {
            await _commit.CommitAsync();
        }
        catch (Orleans.Storage.InconsistentStateException)
        {
            // Another activation wrote (a silo was declared dead while this one lived): reload on
            // the next call rather than overwrite; the callers were not acknowledged.
            DeactivateOnIdle();
            throw;
        }
    }
}
