using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>One product as the catalog admin sends it.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class CatalogProduct
{
    /// <summary>Unique product id.</summary>
    [MemoryPackOrder(0)] public string ProductId { get; set; } = "";
    /// <summary>Title.</summary>
    [MemoryPackOrder(1)] public string Title { get; set; } = "";
    /// <summary>Category path ("shoes/running").</summary>
    [MemoryPackOrder(2)] public string Category { get; set; } = "";
    /// <summary>Description text (embedded for ranking).</summary>
    [MemoryPackOrder(3)] public string Description { get; set; } = "";
    /// <summary>Price in the smallest currency unit (cents).</summary>
    [MemoryPackOrder(4)] public long PriceMinor { get; set; }
    /// <summary>Units in stock.</summary>
    [MemoryPackOrder(5)] public int Stock { get; set; }
}

/// <summary>CatalogUpsert (client → server, admin role).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class CatalogUpsertRequest : IRequestBody
{
    /// <inheritdoc/>
    [MemoryPackOrder(0)] public uint TimeoutMs { get; set; }
    /// <summary>Products to insert or replace.</summary>
    [MemoryPackOrder(1)] public CatalogProduct[] Products { get; set; } = [];
}

/// <summary>CatalogUpsertResult (server → client).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class CatalogUpsertResult
{
    /// <summary>Products written.</summary>
    [MemoryPackOrder(0)] public int Upserted { get; set; }
    /// <summary>The catalog version after the write.</summary>
    [MemoryPackOrder(1)] public long CatalogVersion { get; set; }
}
