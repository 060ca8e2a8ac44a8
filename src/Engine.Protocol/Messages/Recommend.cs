using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>Recommend (client → server, storefront role): rank products for a shopper now.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class RecommendRequest : IRequestBody
{
    /// <inheritdoc/>
    [MemoryPackOrder(0)] public uint TimeoutMs { get; set; }
    /// <summary>The shopper.</summary>
    [MemoryPackOrder(1)] public string CustomerId { get; set; } = "";
    /// <summary>"web", "ios", "android", ...</summary>
    [MemoryPackOrder(2)] public string Device { get; set; } = "";
    /// <summary>The page the slot is on ("home", "pdp", "cart", ...).</summary>
    [MemoryPackOrder(3)] public string Page { get; set; } = "";
    /// <summary>A search query when the page has one; null otherwise.</summary>
    [MemoryPackOrder(4)] public string? Query { get; set; }
    /// <summary>Client time, Unix milliseconds.</summary>
    [MemoryPackOrder(5)] public long TimeUnixMs { get; set; }
    /// <summary>How many products to return (1..1000).</summary>
    [MemoryPackOrder(6)] public int K { get; set; } = 10;
    /// <summary>Only products of this category; null = any.</summary>
    [MemoryPackOrder(7)] public string? Category { get; set; }
    /// <summary>Only products in stock.</summary>
    [MemoryPackOrder(8)] public bool InStockOnly { get; set; }
}

/// <summary>One ranked product.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class RecommendedItem
{
    /// <summary>The product.</summary>
    [MemoryPackOrder(0)] public string ProductId { get; set; } = "";
    /// <summary>Final score, higher first.</summary>
    [MemoryPackOrder(1)] public float Score { get; set; }
    /// <summary>
    /// Why it is here, for people (e.g. "matches your recent views · high purchase odds"); "" when the
    /// ranking gives none, and "" (never null) when read from a server older than this member.
    /// </summary>
    [MemoryPackOrder(2)] public string Reason { get; set => field = value ?? ""; } = "";
}

/// <summary>RecommendResult (server → client).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class RecommendResult
{
    /// <summary>Id to quote in later Events (attribution).</summary>
    [MemoryPackOrder(0)] public string RecommendationId { get; set; } = "";
    /// <summary>Best first.</summary>
    [MemoryPackOrder(1)] public RecommendedItem[] Items { get; set; } = [];
    /// <summary>Experiment arm the shopper is in ("" when none).</summary>
    [MemoryPackOrder(2)] public string ExperimentArm { get; set; } = "";
    /// <summary>The ranking model and catalog version that produced the list.</summary>
    [MemoryPackOrder(3)] public string ModelVersion { get; set; } = "";
}
