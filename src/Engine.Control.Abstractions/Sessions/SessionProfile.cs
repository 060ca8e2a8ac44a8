namespace Engine.Control.Sessions;

/// <summary>A shopper's session as the ranking reads it.</summary>
/// <param name="CustomerId">The shopper.</param>
/// <param name="Profile">Decayed, L2-normalized sum of the embeddings of products the shopper
/// interacted with, weighted by kind; empty before the first product event. // [dim] f32</param>
/// <param name="RecentItems">Product ids, most recent first, without repeats.</param>
/// <param name="Cart">Product id → quantity.</param>
/// <param name="CartAbandoned">The cart is not empty and the shopper has been idle longer than the
/// abandonment window.</param>
/// <param name="LastEventAt">Timestamp of the latest event applied.</param>
/// <param name="EventsApplied">Events accepted so far (duplicates not counted).</param>
[GenerateSerializer, Immutable]
public sealed record SessionProfile(
    [property: Id(0)] string CustomerId,
    [property: Id(1)] float[] Profile,
    [property: Id(2)] IReadOnlyList<string> RecentItems,
    [property: Id(3)] IReadOnlyDictionary<string, int> Cart,
    [property: Id(4)] bool CartAbandoned,
    [property: Id(5)] DateTimeOffset? LastEventAt,
    [property: Id(6)] long EventsApplied);
