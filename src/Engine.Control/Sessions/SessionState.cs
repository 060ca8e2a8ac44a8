using Engine.Control.Sessions;

namespace Engine.Control.Sessions;

/// <summary>Persisted state of a customer session. Plain properties so both the Orleans and JSON
/// storage serializers handle it.</summary>
[GenerateSerializer]
public sealed class SessionState
{
    /// <summary>Decayed weighted sum of product embeddings, not normalized. // [dim] f32</summary>
    [Id(0)] public float[] Profile { get; set; } = [];
    /// <summary>UTC ticks the profile is decayed to.</summary>
    [Id(1)] public long ProfileTicks { get; set; }
    /// <summary>Product ids, most recent first.</summary>
    [Id(2)] public List<string> Recent { get; set; } = [];
    /// <summary>Product id → quantity.</summary>
    [Id(3)] public Dictionary<string, int> Cart { get; set; } = [];
    /// <summary>UTC ticks of the latest event.</summary>
    [Id(4)] public long LastEventTicks { get; set; }
    /// <summary>Events accepted.</summary>
    [Id(5)] public long EventsApplied { get; set; }
    /// <summary>Recent event ids, oldest first (idempotency window).</summary>
    [Id(6)] public List<Guid> SeenEvents { get; set; } = [];
    /// <summary>Recent exposures of an earlier layout (one record per served list): no longer written; a stored state of
    /// that layout is moved into <see cref="HeldExposures"/> when the session first uses it.</summary>
    [Id(7)] public List<Exposure> Exposures { get; set; } = [];
    /// <summary>Experiments this customer was exposed to (first exposure counts an assignment).</summary>
    [Id(8)] public List<string> Experiments { get; set; } = [];
    /// <summary>The last event-journal entry applied: this state includes every entry up to it, so a
    /// new activation replays only the entries after it (<see cref="Storage.IEventJournal"/>).</summary>
    [Id(9)] public JournalPosition Journal { get; set; }
    /// <summary>Recent exposures, oldest first (reward attribution: id, arm, time, shadow), at most
    /// <see cref="ControlOptions.ExposureWindow"/>; null until the first exposure.</summary>
    [Id(10)] public HeldExposures? HeldExposures { get; set; }
}
