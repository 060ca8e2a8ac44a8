namespace Engine.Control.Sessions;

/// <summary>What a shopper did. Persisted and sent on the wire: values are explicit and append-only
/// (frozen by <c>EnumFreezeTests</c>); never renumber or reuse one.</summary>
public enum EventKind
{
    View = 1,
    Click = 2,
    AddToCart = 3,
    RemoveFromCart = 4,
    Purchase = 5,
    Return = 6,
    /// <summary>A search that showed results (<see cref="CustomerEvent.Query"/> set).</summary>
    SearchWithResults = 7,
    /// <summary>A search that found nothing: a signal of unmet demand, not of interest in a product.</summary>
    SearchNoResults = 8,
    /// <summary>Time spent on a product page (<see cref="CustomerEvent.DwellMs"/> set).</summary>
    Dwell = 9,
}

/// <summary>How the session answered one event. Wire value: explicit and append-only.</summary>
public enum EventOutcome
{
    /// <summary>Applied and durable in the store.</summary>
    Accepted = 1,
    /// <summary>The event id was seen before; nothing changed (idempotent retry). Durable as well.</summary>
    Duplicate = 2,
    /// <summary>The product is not in the catalog; the event was not applied.</summary>
    UnknownProduct = 3,
    /// <summary>The event is malformed (missing product for a product event, wrong customer, ...).</summary>
    Invalid = 4,
}
