using System.IO.Pipelines;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server.Tests;

/// <summary>Whatever arrives, the server answers or closes cleanly, and other connections keep being served.</summary>
public class MalformedInputTests
{
    private static ServerHandlers Handlers => new() { Recommend = new EchoRecommender(), Generate = new WordGenerator(), Events = new CountingEventSink() };

    private static async Task AssertStillServes(InProcessServer host)
    {
        await using var client = host.Client();
        var result = await client.RecommendAsync(new RecommendRequest { CustomerId = "other", K = 2 });
        Assert.Equal("r-other", result.RecommendationId);
    }

    [Fact]
    public async Task Bad_magic_is_answered_on_stream_zero_then_closed()
    {
        await using var host = new InProcessServer(handlers: Handlers);
        var raw = new RawConnection(host.Connect().Client);
        await raw.SendBytesAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        Assert.Equal(ErrorCode.BadFrame, await raw.ReadErrorAsync(0));
        Assert.True(await raw.ClosedAsync());
        await AssertStillServes(host);
    }

    [Fact]
    public async Task Length_past_the_maximum_is_refused_before_the_body_arrives()
    {
        await using var host = new InProcessServer(new ServerOptions { MaxBodyBytes = 4096 }, Handlers);
        var raw = new RawConnection(host.Connect().Client);
        await raw.HelloAsync();
        Assert.Equal(Opcode.HelloOk, (await raw.ReadAsync())!.Value.Opcode);
        var header = new byte[16];
        new FrameHeader(Opcode.Recommend, FrameFlags.End, 1, 4097).Write(header);
        await raw.SendBytesAsync(header); // no body follows: the verdict must not wait for it
        Assert.Equal(ErrorCode.FrameTooLarge, await raw.ReadErrorAsync(0));
        Assert.True(await raw.ClosedAsync());
        await AssertStillServes(host);
    }

    [Fact]
    public async Task Unknown_opcodes_and_garbage_bodies_are_answered_and_the_connection_stays()
    {
        await using var host = new InProcessServer(handlers: Handlers);
        var raw = new RawConnection(host.Connect().Client);
        await raw.HelloAsync();
        await raw.ReadAsync();

        var frame = new byte[16 + 3];
        new FrameHeader((Opcode)200, FrameFlags.End, 5, 3).Write(frame);
        await raw.SendBytesAsync(frame);
        Assert.Equal(ErrorCode.UnknownOpcode, await raw.ReadErrorAsync(5));

        new FrameHeader(Opcode.HelloOk, FrameFlags.End, 6, 3).Write(frame); // a server-only opcode
        await raw.SendBytesAsync(frame);
        Assert.Equal(ErrorCode.UnknownOpcode, await raw.ReadErrorAsync(6));

        var garbage = new byte[16 + 6];
        new FrameHeader(Opcode.Recommend, FrameFlags.End, 7, 6).Write(garbage);
        new byte[] { 0x09, 0x7F, 0x80, 0xFF, 0x00, 0x01 }.CopyTo(garbage, 16);
        await raw.SendBytesAsync(garbage);
        Assert.Equal(ErrorCode.BadBody, await raw.ReadErrorAsync(7));

        await raw.SendAsync(Opcode.Recommend, 0, new RecommendRequest { K = 1 });
        Assert.Equal(ErrorCode.BadStreamId, await raw.ReadErrorAsync(0));

        await raw.SendAsync(Opcode.Recommend, 8, new RecommendRequest { CustomerId = "same", K = 1 });
        var (op, body) = await raw.ReadTerminalAsync(8);
        Assert.Equal(Opcode.RecommendResult, op);
        Assert.Equal("r-same", ((RecommendResult)body!).RecommendationId);
    }

    [Fact]
    public async Task A_frame_cut_off_by_the_client_closing_ends_the_connection_cleanly()
    {
        await using var host = new InProcessServer(handlers: Handlers);
        var (client, served) = host.Connect();
        var raw = new RawConnection(client);
        await raw.HelloAsync();
        await raw.ReadAsync();
        var header = new byte[16 + 10];
        new FrameHeader(Opcode.Recommend, FrameFlags.End, 1, 100).Write(header);
        await raw.SendBytesAsync(header);
        await client.Output.CompleteAsync();
        await served.WaitAsync(TimeSpan.FromSeconds(10));
        await AssertStillServes(host);
    }

    [Fact]
    public async Task A_client_that_never_reads_is_closed_and_its_buffers_stay_bounded()
    {
        // The server's output pipe pauses at 64 KiB; the send timeout then closes the connection.
        var options = new ServerOptions { SendTimeout = TimeSpan.FromMilliseconds(300), SendQueueCapacity = 16 };
        await using var host = new InProcessServer(options, new ServerHandlers { Generate = new WordGenerator(words: 4000), Recommend = new EchoRecommender() });
        var toClient = new PipeOptions(pauseWriterThreshold: 64 * 1024, resumeWriterThreshold: 32 * 1024);
        var (client, served) = host.Connect(serverToClient: toClient);
        var raw = new RawConnection(client);
        await raw.HelloAsync();
        for (uint s = 1; s <= 50; s++) await raw.SendAsync(Opcode.Generate, s, new GenerateRequest { Prompt = "p", MaxTokens = 4000 });
        // Never read. The server must give up on this connection by itself...
        await served.WaitAsync(TimeSpan.FromSeconds(20));
        // ...having buffered no more than the pause threshold plus one batch of frames for it.
        Assert.True(client.Input.TryRead(out ReadResult unread));
        Assert.InRange(unread.Buffer.Length, 1, 64 * 1024 + 16 * 64 * 1024);
        await AssertStillServes(host);
    }

    [Fact]
    public async Task Random_frames_over_many_connections_never_take_the_server_down()
    {
        await using var host = new InProcessServer(new ServerOptions { MaxBodyBytes = 2048, HelloTimeout = TimeSpan.FromSeconds(2) }, Handlers);
        var random = new Random(5);
        var writer = new FrameWriter();
        var frames = new System.Buffers.ArrayBufferWriter<byte>();
        Opcode[] ops = Enum.GetValues<Opcode>();
        for (int connection = 0; connection < 40; connection++)
        {
            var (client, served) = host.Connect();
            frames.Clear();
            writer.Write(frames, Opcode.Hello, FrameFlags.End, 0, new HelloRequest());
            for (int i = 0; i < 250; i++)
            {
                int length = random.Next(0, 200);
                var header = new FrameHeader(ops[random.Next(ops.Length)], FrameFlags.End, (uint)random.Next(0, 20), (uint)length);
                var span = frames.GetSpan(16 + length);
                header.Write(span);
                random.NextBytes(span.Slice(16, length));
                if (random.Next(10) == 0) span[random.Next(16)] ^= 0xFF; // sometimes a broken header
                frames.Advance(16 + length);
            }
            await client.Output.WriteAsync(frames.WrittenMemory);
            await client.Output.CompleteAsync();
            // Drain what the server says until it closes.
            while (true)
            {
                ReadResult read = await client.Input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));
                client.Input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted) break;
            }
            await served.WaitAsync(TimeSpan.FromSeconds(20));
        }
        await AssertStillServes(host);
    }
}
