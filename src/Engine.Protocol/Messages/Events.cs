using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>What a shopper did. Explicit and append-only.</summary>
public enum EventKind : byte
{
    /// <summary>Never sent.</summary>
    Unknown = 0,
    /// <summary>Saw the product.</summary>
    View = 1,
    /// <summary>Clicked it.</summary>
    Click = 2,
    /// <summary>Put it in the cart.</summary>
    AddToCart = 3,
    /// <summary>Bought it.</summary>
    Purchase = 4,
    /// <summary>Sent it back.</summary>
    Return = 5,
}

/// <summary>One shopper event.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class ShopperEvent
{
    /// <summary>The shopper.</summary>
    [MemoryPackOrder(0)] public string CustomerId { get; set; } = "";
    /// <summary><see cref="EventKind"/>.</summary>
    [MemoryPackOrder(1)] public byte Kind { get; set; }
    /// <summary>The product.</summary>
    [MemoryPackOrder(2)] public string ProductId { get; set; } = "";
    /// <summary>The RecommendResult.RecommendationId this follows, or null.</summary>
    [MemoryPackOrder(3)] public string? RecommendationId { get; set; }
    /// <summary>When it happened, Unix milliseconds.</summary>
    [MemoryPackOrder(4)] public long TimeUnixMs { get; set; }
}

/// <summary>Events (client → server, storefront role): a batch of 1..10000 events.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class EventBatch : IRequestBody
{
    /// <inheritdoc/>
    [MemoryPackOrder(0)] public uint TimeoutMs { get; set; }
    /// <summary>The events, in the order they happened.</summary>
    [MemoryPackOrder(1)] public ShopperEvent[] Events { get; set; } = [];
}

/// <summary>EventsAck (server → client): every event of the batch was handed to the control plane.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class EventsAck
{
    /// <summary>Events accepted (= the batch size).</summary>
    [MemoryPackOrder(0)] public int Accepted { get; set; }
}
