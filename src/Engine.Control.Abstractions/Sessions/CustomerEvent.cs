namespace Engine.Control.Sessions;

/// <summary>One thing a shopper did. <see cref="EventId"/> makes delivery idempotent: a retry with the
/// same id is answered <see cref="EventOutcome.Duplicate"/> and changes nothing.</summary>
/// <param name="EventId">Unique per event, chosen by the sender (retries reuse it).</param>
/// <param name="CustomerId">The shopper; routes the event to its session grain.</param>
/// <param name="Kind">What happened.</param>
/// <param name="ProductId">The product (required for every kind except the two searches).</param>
/// <param name="Timestamp">When it happened at the storefront (events may arrive out of order).</param>
/// <param name="RecommendationId">The recommendation that showed the product, if any: links the
/// event to an experiment arm for rewards.</param>
/// <param name="Query">The search text, for searches.</param>
/// <param name="DwellMs">Milliseconds on the page, for <see cref="EventKind.Dwell"/>.</param>
/// <param name="Quantity">Items added, removed, bought or returned (default 1).</param>
[GenerateSerializer, Immutable]
public sealed record CustomerEvent(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] string CustomerId,
    [property: Id(2)] EventKind Kind,
    [property: Id(3)] string? ProductId,
    [property: Id(4)] DateTimeOffset Timestamp,
    [property: Id(5)] string? RecommendationId = null,
    [property: Id(6)] string? Query = null,
    [property: Id(7)] int DwellMs = 0,
    [property: Id(8)] int Quantity = 1)
{
    /// <summary>Whether this kind of event must name a product.</summary>
    public bool NeedsProduct => Kind is not (EventKind.SearchWithResults or EventKind.SearchNoResults);
}
