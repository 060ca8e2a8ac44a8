using System.Buffers;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Protocol.Tests;

public class FrameReaderTests
{
    private static byte[] Frames(params (Opcode Op, uint Stream, object Body)[] frames)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new FrameWriter();
        foreach (var (op, stream, body) in frames) writer.WriteObject(output, op, FrameFlags.End, stream, body);
        return output.WrittenSpan.ToArray();
    }

    [Fact]
    public void Parses_back_to_back_frames_and_their_bodies()
    {
        byte[] bytes = Frames(
            (Opcode.Recommend, 7, new RecommendRequest { CustomerId = "c1", K = 5 }),
            (Opcode.Health, 8, new HealthRequest { TimeoutMs = 50 }));
        var buffer = new ReadOnlySequence<byte>(bytes);

        Assert.Equal(FrameReadStatus.Complete, FrameReader.TryParse(buffer, 1024, out Frame first, out var consumed, out _));
        Assert.Equal(Opcode.Recommend, first.Opcode);
        Assert.Equal(7u, first.StreamId);
        Assert.True(first.Header.IsEnd);
        var request = MessageSerializer.Deserialize<RecommendRequest>(first.Body);
        Assert.Equal(("c1", 5), (request.CustomerId, request.K));

        buffer = buffer.Slice(consumed);
        Assert.Equal(FrameReadStatus.Complete, FrameReader.TryParse(buffer, 1024, out Frame second, out consumed, out _));
        Assert.Equal(50u, MessageSerializer.Deserialize<HealthRequest>(second.Body).TimeoutMs);
        Assert.Equal(0, buffer.Slice(consumed).Length);
    }

    [Fact]
    public void Every_prefix_of_a_frame_needs_more_data_and_consumes_nothing()
    {
        byte[] bytes = Frames((Opcode.Recommend, 1, new RecommendRequest { CustomerId = "someone" }));
        for (int n = 0; n < bytes.Length; n++)
        {
            var buffer = new ReadOnlySequence<byte>(bytes, 0, n);
            Assert.Equal(FrameReadStatus.NeedMoreData, FrameReader.TryParse(buffer, 1024, out _, out var consumed, out var examined));
            Assert.Equal(buffer.Start, consumed);
            Assert.Equal(buffer.End, examined);
        }
    }

    [Fact]
    public void A_frame_split_over_one_byte_segments_parses_the_same()
    {
        byte[] bytes = Frames((Opcode.Generate, 3, new GenerateRequest { Prompt = "Write about shoes", MaxTokens = 9 }));
        ReadOnlySequence<byte> buffer = TestSegments.Split(bytes, 1);
        Assert.Equal(FrameReadStatus.Complete, FrameReader.TryParse(buffer, 1024, out Frame frame, out var consumed, out _));
        Assert.Equal(buffer.End, consumed);
        var request = MessageSerializer.Deserialize<GenerateRequest>(frame.Body);
        Assert.Equal(("Write about shoes", 9), (request.Prompt, request.MaxTokens));
    }

    [Fact]
    public void Length_past_the_maximum_is_rejected_from_the_header_alone()
    {
        var header = new byte[16];
        new FrameHeader(Opcode.Recommend, FrameFlags.End, 1, 1025).Write(header);
        // Only the header has arrived: the verdict needs no body byte.
        Assert.Equal(FrameReadStatus.FrameTooLarge, FrameReader.TryParse(new ReadOnlySequence<byte>(header), 1024, out _, out _, out _));
        new FrameHeader(Opcode.Recommend, FrameFlags.End, 1, uint.MaxValue).Write(header);
        Assert.Equal(FrameReadStatus.FrameTooLarge, FrameReader.TryParse(new ReadOnlySequence<byte>(header), int.MaxValue, out _, out _, out _));
    }

    [Fact]
    public void Bad_magic_and_unknown_version_are_rejected()
    {
        byte[] bytes = Frames((Opcode.Health, 1, new HealthRequest()));
        bytes[0] = (byte)'X';
        Assert.Equal(FrameReadStatus.BadMagic, FrameReader.TryParse(new ReadOnlySequence<byte>(bytes), 1024, out _, out _, out _));
        Assert.Equal(ErrorCode.BadFrame, FrameReadStatus.BadMagic.ToErrorCode());
        bytes[0] = (byte)'E';
        bytes[4] = 2;
        Assert.Equal(FrameReadStatus.UnsupportedVersion, FrameReader.TryParse(new ReadOnlySequence<byte>(bytes), 1024, out _, out _, out _));
    }

    [Fact]
    public void Garbage_body_is_a_bad_body_protocol_exception()
    {
        var garbage = new ReadOnlySequence<byte>([0x07, 0xFF, 0xFF, 0xFF, 0x7F, 0x01]);
        var e = Assert.Throws<ProtocolException>(() => MessageSerializer.Deserialize<RecommendRequest>(garbage));
        Assert.Equal(ErrorCode.BadBody, e.Code);
        var empty = Assert.Throws<ProtocolException>(() => MessageSerializer.Deserialize(Opcode.Recommend, ReadOnlySequence<byte>.Empty));
        Assert.Equal(ErrorCode.BadBody, empty.Code);
        var nullObject = Assert.Throws<ProtocolException>(() => MessageSerializer.Deserialize<RecommendRequest>(new ReadOnlySequence<byte>([0xFF])));
        Assert.Equal(ErrorCode.BadBody, nullObject.Code);
    }
}

internal static class TestSegments
{
    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex) { Memory = memory; RunningIndex = runningIndex; }
        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    /// <summary>Splits <paramref name="bytes"/> into segments of <paramref name="size"/> bytes (the way a socket may deliver them).</summary>
    public static ReadOnlySequence<byte> Split(byte[] bytes, int size)
    {
        var first = new Segment(bytes.AsMemory(0, Math.Min(size, bytes.Length)), 0);
        Segment last = first;
        for (int i = size; i < bytes.Length; i += size) last = last.Append(bytes.AsMemory(i, Math.Min(size, bytes.Length - i)));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
