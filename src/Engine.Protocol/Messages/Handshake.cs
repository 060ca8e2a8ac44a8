using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>Hello (client → server, stream 0): the first frame on a connection.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class HelloRequest
{
    /// <summary>The highest protocol version the client speaks (currently 1).</summary>
    [MemoryPackOrder(0)] public ushort ProtocolVersion { get; set; } = ProtocolConstants.ProtocolVersion;
    /// <summary>Features the client understands (<see cref="Protocol.Capabilities"/>); 0 is fine.</summary>
    [MemoryPackOrder(1)] public ulong Capabilities { get; set; }
    /// <summary>The API key; empty when the server accepts loopback clients without keys.</summary>
    [MemoryPackOrder(2)] public string ApiKey { get; set; } = "";
    /// <summary>Free text naming the client, for logs ("storefront-eu/1.4").</summary>
    [MemoryPackOrder(3)] public string ClientName { get; set; } = "";
}

/// <summary>HelloOk (server → client, stream 0): the handshake succeeded.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class HelloOk
{
    /// <summary>The protocol version both sides now speak (min of the two).</summary>
    [MemoryPackOrder(0)] public ushort ProtocolVersion { get; set; }
    /// <summary>What this server offers (<see cref="Protocol.Capabilities"/>).</summary>
    [MemoryPackOrder(1)] public ulong Capabilities { get; set; }
    /// <summary>What the key allows (<see cref="Protocol.Roles"/>).</summary>
    [MemoryPackOrder(2)] public byte Roles { get; set; }
    /// <summary>Free text naming the server build.</summary>
    [MemoryPackOrder(3)] public string ServerName { get; set; } = "";
    /// <summary>The largest frame body the server accepts.</summary>
    [MemoryPackOrder(4)] public uint MaxBodyBytes { get; set; }
    /// <summary>How many requests may be in flight on this connection at once; more are answered Overloaded.</summary>
    [MemoryPackOrder(5)] public uint MaxInFlight { get; set; }
}

/// <summary>GoAway (server → client, stream 0): draining; finish in-flight requests, open a new connection for new ones.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class GoAway
{
    /// <summary>Why ("server shutting down").</summary>
    [MemoryPackOrder(0)] public string Reason { get; set; } = "";
}
