using System.Buffers.Binary;

namespace Engine.Protocol;

/// <summary>
/// The fixed 16-byte header in front of every frame, all fields little-endian:
/// <code>
/// offset size field
///  0     4    magic      "ENGN"
///  4     1    version    1
///  5     1    opcode     <see cref="Opcode"/>
///  6     2    flags      <see cref="FrameFlags"/>
///  8     4    stream id  0 = connection, else chosen by the client per request
/// 12     4    length     body bytes that follow the header
/// </code>
/// </summary>
public readonly record struct FrameHeader(Opcode Opcode, FrameFlags Flags, uint StreamId, uint Length)
{
    /// <summary>Bytes in a header.</summary>
    public const int Size = ProtocolConstants.HeaderSize;

    /// <summary>True when <see cref="FrameFlags.End"/> is set.</summary>
    public bool IsEnd => (Flags & FrameFlags.End) != 0;

    /// <summary>Writes the header into <paramref name="destination"/> (at least <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> destination)
    {
        if (destination.Length < Size) ThrowHelpers.ThrowDestinationTooSmall();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, ProtocolConstants.MagicValue);
        destination[4] = ProtocolConstants.FrameVersion;
        destination[5] = (byte)Opcode;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], (ushort)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], StreamId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], Length);
    }

    /// <summary>
    /// Reads and validates a header from exactly <see cref="Size"/> bytes: magic, version, and
    /// length against <paramref name="maxBodyBytes"/> (checked here, before any body is buffered).
    /// </summary>
    public static FrameReadStatus TryRead(ReadOnlySpan<byte> source, int maxBodyBytes, out FrameHeader header)
    {
        header = default;
        if (BinaryPrimitives.ReadUInt32LittleEndian(source) != ProtocolConstants.MagicValue) return FrameReadStatus.BadMagic;
        if (source[4] != ProtocolConstants.FrameVersion) return FrameReadStatus.UnsupportedVersion;
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(source[12..]);
        if (length > (uint)maxBodyBytes) return FrameReadStatus.FrameTooLarge;
        header = new FrameHeader(
            (Opcode)source[5],
            (FrameFlags)BinaryPrimitives.ReadUInt16LittleEndian(source[6..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[8..]),
            length);
        return FrameReadStatus.Complete;
    }
}
