using System.Buffers;
using MemoryPack;

namespace Engine.Protocol;

/// <summary>
/// Writes frames (header + MemoryPack body) straight into an <see cref="IBufferWriter{T}"/> such as a
/// PipeWriter. One instance per writer loop: it holds a reusable body buffer and is not thread-safe.
/// Flushing is the caller's job, so several frames can go out in one flush.
/// </summary>
public sealed class FrameWriter
{
    private readonly FrameBodyBuffer _body = new();

    /// <summary>Creates a writer that refuses bodies past <paramref name="maxBodyBytes"/>.</summary>
    public FrameWriter(int maxBodyBytes = ProtocolConstants.DefaultMaxBodyBytes) => MaxBodyBytes = maxBodyBytes;

    /// <summary>The largest body this writer emits; a larger one throws <see cref="ProtocolException"/> (FrameTooLarge) and writes nothing.</summary>
    public int MaxBodyBytes { get; }

    /// <summary>Writes one frame with <paramref name="body"/> serialized by MemoryPack.</summary>
    public void Write<T>(IBufferWriter<byte> output, Opcode opcode, FrameFlags flags, uint streamId, T body)
    {
        _body.Begin(output);
        try
        {
            MemoryPackSerializer.Serialize(_body, body, MessageSerializer.Options);
        }
        catch
        {
            _body.Reset();
            throw;
        }
        _body.Complete(opcode, flags, streamId, MaxBodyBytes);
    }

    /// <summary>Writes one frame whose body's static type is only known at run time (a message from <see cref="Messages"/>).</summary>
    public void WriteObject(IBufferWriter<byte> output, Opcode opcode, FrameFlags flags, uint streamId, object body)
    {
        _body.Begin(output);
        try
        {
            MemoryPackSerializer.Serialize(body.GetType(), _body, body, MessageSerializer.Options);
        }
        catch
        {
            _body.Reset();
            throw;
        }
        _body.Complete(opcode, flags, streamId, MaxBodyBytes);
    }

    /// <summary>Writes a frame with an empty body (Cancel).</summary>
    public static void WriteEmpty(IBufferWriter<byte> output, Opcode opcode, FrameFlags flags, uint streamId)
    {
        Span<byte> span = output.GetSpan(FrameHeader.Size);
        new FrameHeader(opcode, flags, streamId, 0).Write(span);
        output.Advance(FrameHeader.Size);
    }
}
