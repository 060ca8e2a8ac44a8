using Engine.Control.Feedback;

namespace Engine.Control.Sessions;

internal sealed partial class CustomerSessionGrain
{
    /// <summary>Applies one event to the in-memory state (no await: one turn).</summary>
    private EventOutcome Apply(CustomerEvent e, float[]? vector, List<FeedbackSignal> signals)
    {
        if (e.CustomerId != CustomerKey || !EventChecks.IsWellFormed(e))
            return EventOutcome.Invalid;
        _seen ??= [.. S.SeenEvents];
        if (_seen.Contains(e.EventId))
            return EventOutcome.Duplicate;
        if (e.NeedsProduct && vector is null)
            return EventOutcome.UnknownProduct; // not remembered: a retry after the product is added applies
        if (vector is { Length: > 0 } && S.Profile.Length > 0 && vector.Length != S.Profile.Length)
            return EventOutcome.Invalid;

        Remember(e.EventId);
        var ticks = e.Timestamp.UtcTicks;
        if (vector is { Length: > 0 }) AddToProfile(vector, ProfileWeights.For(e), ticks);
        if (e.ProductId is { } pid && e.Kind is EventKind.View or EventKind.Click or EventKind.AddToCart or EventKind.Purchase or EventKind.Dwell)
        {
            S.Recent.Remove(pid);
            S.Recent.Insert(0, pid);
            if (S.Recent.Count > _options.RecentItems) S.Recent.RemoveAt(S.Recent.Count - 1);
        }
        switch (e.Kind)
        {
            case EventKind.AddToCart:
                S.Cart[e.ProductId!] = S.Cart.GetValueOrDefault(e.ProductId!) + e.Quantity;
                break;
            case EventKind.RemoveFromCart:
            case EventKind.Purchase:
                var left = S.Cart.GetValueOrDefault(e.ProductId!) - e.Quantity;
                if (left > 0) S.Cart[e.ProductId!] = left; else S.Cart.Remove(e.ProductId!);
                break;
        }
        // Out-of-order events never move the clock back.
        S.LastEventTicks = Math.Max(S.LastEventTicks, ticks);
        S.EventsApplied++;
        Reward(e, signals);
        _commit.MarkDirty();
        return EventOutcome.Accepted;
    }

    private void Remember(Guid id)
    {
        _seen!.Add(id);
        S.SeenEvents.Add(id);
        if (S.SeenEvents.Count > _options.DedupWindow)
        {
            _seen.Remove(S.SeenEvents[0]);
            S.SeenEvents.RemoveAt(0);
        }
    }

    /// <summary>profile = Σ w·exp(−Δt/τ)·embedding, kept decayed to the latest event's time;
    /// an older (out-of-order) event is added already decayed.</summary>
    /// <remarks>The state is read once into a local: every <c>S</c> goes through Orleans'
    /// <c>IPersistentState.State</c>, which checks the runtime context (a thread-local lookup), and the loops
    /// below ran three of those per element (≈ 2,300 per event for 384 dimensions: most of the silo's CPU per
    /// event on the journal path: perf record of `Engine.Benchmarks ingest`).</remarks>
    private void AddToProfile(float[] vector, float weight, long ticks)
    {
        var state = S;
        var tau = _options.ProfileHalfLife.Ticks / Math.Log(2);
        if (state.Profile.Length == 0) { state.Profile = new float[vector.Length]; state.ProfileTicks = ticks; }
        var profile = state.Profile.AsSpan(); // [dim] f32
        if (ticks > state.ProfileTicks)
        {
            var decay = (float)Math.Exp(-(ticks - state.ProfileTicks) / tau);
            for (var i = 0; i < profile.Length; i++) profile[i] *= decay;
            state.ProfileTicks = ticks;
        }
        else
        {
            weight *= (float)Math.Exp(-(state.ProfileTicks - ticks) / tau);
        }
        var v = vector.AsSpan(0, profile.Length); // same length: Apply refuses a vector of another size
        for (var i = 0; i < profile.Length; i++) profile[i] += weight * v[i];
    }

    /// <summary>An event naming a served recommendation rewards that recommendation's arm.</summary>
    private void Reward(CustomerEvent e, List<FeedbackSignal> signals)
    {
        if (e.RecommendationId is not { } rec) return;
        FeedbackKind? kind = e.Kind switch
        {
            EventKind.Click => FeedbackKind.Click,
            EventKind.AddToCart => FeedbackKind.AddToCart,
            EventKind.Purchase => FeedbackKind.Purchase,
            EventKind.Return => FeedbackKind.Return,
            _ => null,
        };
        if (kind is null) return;
        if (S.HeldExposures is null && S.Exposures.Count == 0) return; // no exposure held
        if (Held.Lookup(rec) is not { Shadow: false } exposure) return; // a shadow arm is never shown, so never rewarded
        signals.Add(new FeedbackSignal(exposure.Arm, kind.Value, rec, e.ProductId, Quantity: e.Quantity));
    }
}
