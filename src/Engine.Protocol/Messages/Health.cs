using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>Health (client → server): allowed before Hello and without a key.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class HealthRequest : IRequestBody
{
    /// <inheritdoc/>
    [MemoryPackOrder(0)] public uint TimeoutMs { get; set; }
}

/// <summary>Server state reported by Health. Explicit and append-only.</summary>
public enum HealthStatus : byte
{
    /// <summary>Serving.</summary>
    Ok = 0,
    /// <summary>Up but still loading (model, catalog embeddings); some requests answer NotAvailable.</summary>
    Warming = 1,
    /// <summary>Shutting down; no new requests.</summary>
    Draining = 2,
}

/// <summary>HealthResult (server → client).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class HealthResult
{
    /// <summary><see cref="HealthStatus"/>.</summary>
    [MemoryPackOrder(0)] public byte Status { get; set; }
    /// <summary>Server build.</summary>
    [MemoryPackOrder(1)] public string ServerName { get; set; } = "";
    /// <summary>Milliseconds since the server started.</summary>
    [MemoryPackOrder(2)] public ulong UptimeMs { get; set; }
    /// <summary>Open connections.</summary>
    [MemoryPackOrder(3)] public uint Connections { get; set; }
    /// <summary>Requests in flight over all connections.</summary>
    [MemoryPackOrder(4)] public uint InFlight { get; set; }
    /// <summary>What this server offers (<see cref="Protocol.Capabilities"/>).</summary>
    [MemoryPackOrder(5)] public ulong Capabilities { get; set; }
}
