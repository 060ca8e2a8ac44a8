namespace Engine.Protocol;

/// <summary>Fixed numbers of the wire format (docs/PROTOCOL.md, "Frame header").</summary>
public static class ProtocolConstants
{
    /// <summary>The four bytes every frame starts with: ASCII "ENGN" (0x45 0x4E 0x47 0x4E).</summary>
    public static ReadOnlySpan<byte> Magic => "ENGN"u8;

    /// <summary>The magic read as a little-endian uint32.</summary>
    public const uint MagicValue = 0x4E474E45;

    /// <summary>The frame format version this build writes and reads (header byte 4).</summary>
    public const byte FrameVersion = 1;

    /// <summary>The protocol version negotiated in Hello (message set and semantics).</summary>
    public const ushort ProtocolVersion = 1;

    /// <summary>Bytes in a frame header.</summary>
    public const int HeaderSize = 16;

    /// <summary>
    /// Default largest body a peer accepts: 1 MiB. Big enough for a catalog upsert of a few thousand
    /// products or a long prompt, small enough that a connection's buffers stay bounded.
    /// </summary>
    public const int DefaultMaxBodyBytes = 1 << 20;

    /// <summary>Stream id for connection-level frames (Hello, HelloOk, GoAway, connection errors).</summary>
    public const uint ConnectionStream = 0;
}
