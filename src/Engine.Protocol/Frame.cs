using System.Buffers;

namespace Engine.Protocol;

/// <summary>
/// One parsed frame: its header and a slice of the receive buffer holding its body. The body is
/// only valid until the reader's <c>AdvanceTo</c>; decode it (or copy it) before that.
/// </summary>
public readonly struct Frame
{
    /// <summary>Creates a frame over <paramref name="body"/> (not copied).</summary>
    public Frame(FrameHeader header, ReadOnlySequence<byte> body)
    {
        Header = header;
        Body = body;
    }

    /// <summary>The header.</summary>
    public FrameHeader Header { get; }

    /// <summary>The body bytes, a slice of the input (no copy).</summary>
    public ReadOnlySequence<byte> Body { get; }

    /// <summary>Shortcut for Header.Opcode.</summary>
    public Opcode Opcode => Header.Opcode;

    /// <summary>Shortcut for Header.StreamId.</summary>
    public uint StreamId => Header.StreamId;
}
