using System.Buffers;
using System.IO.Pipelines;
using Engine.Protocol;
using Engine.Protocol.Messages;
using MemoryPack;

namespace Engine.Protocol.Tests;

public class FrameWriterTests
{
    [Fact]
    public void A_body_larger_than_the_first_block_spills_and_round_trips()
    {
        var products = Enumerable.Range(0, 400).Select(i => new CatalogProduct { ProductId = $"p{i}", Title = new string('t', 40), Stock = i }).ToArray();
        var output = new ArrayBufferWriter<byte>(16);
        new FrameWriter().Write(output, Opcode.CatalogUpsert, FrameFlags.End, 9, new CatalogUpsertRequest { Products = products });
        Assert.True(output.WrittenCount > 8192);

        Assert.Equal(FrameReadStatus.Complete, FrameReader.TryParse(new ReadOnlySequence<byte>(output.WrittenMemory), 1 << 20, out Frame frame, out _, out _));
        Assert.Equal(output.WrittenCount - 16, (int)frame.Header.Length);
        var back = MessageSerializer.Deserialize<CatalogUpsertRequest>(frame.Body);
        Assert.Equal(400, back.Products.Length);
        Assert.Equal("p399", back.Products[399].ProductId);
        Assert.Equal(399, back.Products[399].Stock);
    }

    [Fact]
    public void A_body_past_the_maximum_throws_and_writes_nothing()
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new FrameWriter(maxBodyBytes: 64);
        var e = Assert.Throws<ProtocolException>(() => writer.Write(output, Opcode.GenerateToken, FrameFlags.None, 1, new GenerateToken { Text = new string('x', 200) }));
        Assert.Equal(ErrorCode.FrameTooLarge, e.Code);
        Assert.Equal(0, output.WrittenCount);
        // The writer is still usable afterwards.
        writer.Write(output, Opcode.GenerateToken, FrameFlags.None, 1, new GenerateToken { Text = "ok" });
        Assert.True(output.WrittenCount > 16);
    }

    [Fact]
    public async Task Frames_written_into_a_pipe_writer_read_back_in_order()
    {
        var pipe = new Pipe();
        var writer = new FrameWriter();
        for (uint i = 0; i < 50; i++) writer.Write(pipe.Writer, Opcode.GenerateToken, FrameFlags.None, 5, new GenerateToken { Sequence = i, Text = $"piece {i} " });
        FrameWriter.WriteEmpty(pipe.Writer, Opcode.Cancel, FrameFlags.End, 5);
        await pipe.Writer.FlushAsync();
        pipe.Writer.Complete();

        ReadResult read;
        while (!(read = await pipe.Reader.ReadAsync()).IsCompleted) pipe.Reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        var buffer = read.Buffer;
        for (uint i = 0; i < 50; i++)
        {
            Assert.Equal(FrameReadStatus.Complete, FrameReader.TryParse(buffer, 1024, out Frame frame, out var consumed, out _));
            var token = MessageSerializer.Deserialize<GenerateToken>(frame.Body);
            Assert.Equal((i, $"piece {i} "), (token.Sequence, token.Text));
            buffer = buffer.Slice(consumed);
        }
        Assert.Equal(FrameReadStatus.Complete, FrameReader.TryParse(buffer, 1024, out Frame cancel, out _, out _));
        Assert.Equal((Opcode.Cancel, 0u), (cancel.Opcode, cancel.Header.Length));
    }
}

/// <summary>A later build's Hello with one more member: what evolution looks like on the wire.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class HelloRequestFromTheFuture
{
    [MemoryPackOrder(0)] public ushort ProtocolVersion { get; set; }
    [MemoryPackOrder(1)] public ulong Capabilities { get; set; }
    [MemoryPackOrder(2)] public string ApiKey { get; set; } = "";
    [MemoryPackOrder(3)] public string ClientName { get; set; } = "";
    [MemoryPackOrder(4)] public string Region { get; set; } = "";
}

/// <summary>An earlier build's Hello with fewer members.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class HelloRequestFromThePast
{
    [MemoryPackOrder(0)] public ushort ProtocolVersion { get; set; }
    [MemoryPackOrder(1)] public ulong Capabilities { get; set; }
}

public class EvolutionTests
{
    [Fact]
    public void A_reader_skips_members_appended_by_a_newer_peer()
    {
        byte[] bytes = MessageSerializer.ToBytes(new HelloRequestFromTheFuture { ProtocolVersion = 2, ApiKey = "k", ClientName = "n", Region = "eu-west" });
        var hello = MessageSerializer.Deserialize<HelloRequest>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal((2, "k", "n"), (hello.ProtocolVersion, hello.ApiKey, hello.ClientName));
    }

    [Fact]
    public void A_reader_defaults_members_an_older_peer_does_not_send()
    {
        byte[] bytes = MessageSerializer.ToBytes(new HelloRequestFromThePast { ProtocolVersion = 1, Capabilities = 3 });
        var hello = MessageSerializer.Deserialize<HelloRequest>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal((1, 3UL, null), (hello.ProtocolVersion, hello.Capabilities, hello.ApiKey)); // missing = zero value
    }
}
