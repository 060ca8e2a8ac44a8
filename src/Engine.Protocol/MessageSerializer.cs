using System.Buffers;
using MemoryPack;

namespace Engine.Protocol;

/// <summary>
/// MemoryPack settings of the wire (strings as UTF-8) and body decoding that turns any failure into
/// <see cref="ProtocolException"/> with <see cref="ErrorCode.BadBody"/>. Every body passes
/// <see cref="BodyValidator"/> before MemoryPack reads it (MemoryPack trusts wire lengths).
/// </summary>
public static class MessageSerializer
{
    /// <summary>Strings go on the wire in MemoryPack's UTF-8 form (docs/PROTOCOL.md, "Strings").</summary>
    public static MemoryPackSerializerOptions Options { get; } = MemoryPackSerializerOptions.Utf8;

    /// <summary>Decodes a body of type <typeparamref name="T"/> straight from the receive buffer.</summary>
    public static T Deserialize<T>(in ReadOnlySequence<byte> body) where T : class
    {
        BodyValidator.Validate(typeof(T), body);
        T? value;
        try
        {
            value = MemoryPackSerializer.Deserialize<T>(body, Options);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ProtocolException(ErrorCode.BadBody, $"The {typeof(T).Name} body is not valid MemoryPack: {e.Message}", e);
        }
        return value ?? throw new ProtocolException(ErrorCode.BadBody, $"The {typeof(T).Name} body is null.");
    }

    /// <summary>Decodes the body of a frame whose opcode has a message type (<see cref="OpcodeBodies"/>).</summary>
    public static object Deserialize(Opcode opcode, in ReadOnlySequence<byte> body)
    {
        Type type = OpcodeBodies.BodyType(opcode)
            ?? throw new ProtocolException(ErrorCode.UnknownOpcode, $"Opcode {(byte)opcode} has no body type.");
        BodyValidator.Validate(type, body);
        object? value;
        try
        {
            value = MemoryPackSerializer.Deserialize(type, body, Options);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ProtocolException(ErrorCode.BadBody, $"The {opcode} body is not valid MemoryPack: {e.Message}", e);
        }
        return value ?? throw new ProtocolException(ErrorCode.BadBody, $"The {opcode} body is null.");
    }

    /// <summary>Serializes a message to a new array (tests, tools; the hot path uses <see cref="FrameWriter"/>).</summary>
    public static byte[] ToBytes<T>(T value) => MemoryPackSerializer.Serialize(value, Options);
}
