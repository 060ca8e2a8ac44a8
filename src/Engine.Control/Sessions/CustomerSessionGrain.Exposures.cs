using Engine.Control.Feedback;
using Microsoft.Extensions.Logging;

namespace Engine.Control.Sessions;

/// <summary>The exposure side of a session: served lists kept for reward attribution (the last
/// <see cref="ControlOptions.ExposureWindow"/>) and passed on to the stats shards' decision log.</summary>
internal sealed partial class CustomerSessionGrain
{
    private IGrainTimer? _exposureCheckpointTimer; // registered once, armed by Change (see CheckpointTimer)
    private bool _exposureCheckpointArmed;
    private string? _customerKey; // the grain key as one string (GetPrimaryKeyString decodes a new one per call)

    private static readonly IReadOnlyList<string> NoViews = [];

    private string CustomerKey => _customerKey ??= this.GetPrimaryKeyString();

    async Task ICustomerSessionGrain.RecordExposure(Exposure exposure)
    {
        CheckCustomer([exposure]);
        var signals = new List<FeedbackSignal>(2);
        Expose(exposure, signals);
        await CommitAsync(); // this path acknowledges after the write (a repeated id waits for the write that holds it)
        if (signals.Count > 0) Report(signals, 0, NoViews);
    }

    Task ICustomerSessionGrain.RecordExposures(IReadOnlyList<Exposure> exposures)
    {
        CheckCustomer(exposures);
        var signals = new List<FeedbackSignal>(exposures.Count);
        for (var i = 0; i < exposures.Count; i++) Expose(exposures[i], signals); // index loops: no boxed enumerator per call
        if (signals.Count == 0) return Task.CompletedTask;
        Report(signals, 0, NoViews);
        ScheduleExposureCheckpoint(); // no write per call: see ControlOptions.ExposureCheckpointInterval
        return Task.CompletedTask;
    }

    /// <summary>Checks every exposure before applying any (bad input leaves the state unchanged).</summary>
    private void CheckCustomer(IReadOnlyList<Exposure> exposures)
    {
        var customer = CustomerKey;
        for (var i = 0; i < exposures.Count; i++)
            if (exposures[i].CustomerId != customer)
                throw new ArgumentException($"exposure for customer '{exposures[i].CustomerId}' sent to session '{customer}'");
    }

    /// <summary>Applies one exposure in memory (no await: one turn); a recommendation id already held changes nothing.
    /// Adds the assignment signal of a customer's first (non-shadow) exposure to an experiment, and the exposure
    /// signal that carries the context and list to the decision log.</summary>
    private void Expose(Exposure exposure, List<FeedbackSignal> signals)
    {
        var held = Held;
        if (held.Contains(exposure.RecommendationId)) return;
        if (!exposure.Shadow && !S.Experiments.Contains(exposure.Arm.ExperimentId))
        {
            S.Experiments.Add(exposure.Arm.ExperimentId);
            signals.Add(new FeedbackSignal(exposure.Arm, FeedbackKind.Assignment, exposure.RecommendationId));
        }
        signals.Add(new FeedbackSignal(exposure.Arm, FeedbackKind.Exposure, exposure.RecommendationId,
            Context: exposure.Context, Actions: exposure.Actions, Timestamp: exposure.Timestamp, Shadow: exposure.Shadow,
            ContextUtf8: exposure.ContextUtf8));
        // Reward attribution needs the id, arm and shadow flag only: the context and the list go to the stats grains'
        // decision log, not into every write of this session's state; and they are copied into the window's arrays, so
        // no object of this exposure outlives the call (HeldExposures).
        held.Add(exposure.RecommendationId, exposure.Arm, exposure.Timestamp, exposure.Shadow);
        _commit.MarkDirty();
    }

    /// <summary>The held exposures, created on first use; a state of the list layout is moved over, and a window of
    /// another capacity than <see cref="ControlOptions.ExposureWindow"/> keeps its newest.</summary>
    private HeldExposures Held
    {
        get
        {
            var held = S.HeldExposures;
            if (held is not null && held.Capacity == _options.ExposureWindow && S.Exposures.Count == 0) return held;
            held = held is null ? new HeldExposures(_options.ExposureWindow) : held.Capacity == _options.ExposureWindow ? held : held.Resized(_options.ExposureWindow);
            foreach (var e in S.Exposures) if (!held.Contains(e.RecommendationId)) held.Add(e.RecommendationId, e.Arm, e.Timestamp, e.Shadow);
            S.Exposures = [];
            return S.HeldExposures = held;
        }
    }

    /// <summary>A one-shot timer: exposures applied in memory are written at most
    /// <see cref="ControlOptions.ExposureCheckpointInterval"/> later (sooner if an event's checkpoint writes first; each
    /// arming draws its delay in [interval/2, interval]: <see cref="SpreadDelay"/>).</summary>
    private void ScheduleExposureCheckpoint()
    {
        if (_exposureCheckpointArmed) return;
        _exposureCheckpointArmed = true;
        (_exposureCheckpointTimer ??= CheckpointTimer(static grain => grain.ExposureCheckpointAsync()))
            .Change(SpreadDelay(_options.ExposureCheckpointInterval), Timeout.InfiniteTimeSpan);
    }

    private async Task ExposureCheckpointAsync()
    {
        _exposureCheckpointArmed = false; // exposures applied from here on arm it again
        try
        {
            await CommitAsync(); // nothing to write when a checkpoint since covered them
        }
        catch (Exception ex)
        {
            _log.LogWarning(ex, "session {Customer}: exposure checkpoint failed; retrying in {Interval}", this.GetPrimaryKeyString(), _options.ExposureCheckpointInterval);
            ScheduleExposureCheckpoint();
        }
    }
}
