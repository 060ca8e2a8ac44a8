using Engine.Client;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server.Tests;

public class StreamingAndLimitsTests
{
    [Fact]
    public async Task Generate_streams_numbered_pieces_whose_concatenation_is_the_final_text()
    {
        await using var host = new InProcessServer(handlers: new ServerHandlers { Generate = new WordGenerator(words: 30) });
        var raw = new RawConnection(host.Connect().Client);
        await raw.HelloAsync();
        await raw.ReadAsync();
        await raw.SendAsync(Opcode.Generate, 3, new GenerateRequest { Prompt = "p", MaxTokens = 30 });
        var text = new System.Text.StringBuilder();
        uint expected = 0;
        while (true)
        {
            var frame = (await raw.ReadAsync())!.Value;
            Assert.Equal(3u, frame.Stream);
            if (frame.Opcode == Opcode.GenerateToken)
            {
                Assert.Equal(FrameFlags.None, frame.Flags);
                var token = (GenerateToken)frame.Body!;
                Assert.Equal(expected++, token.Sequence);
                text.Append(token.Text);
                continue;
            }
            Assert.Equal(Opcode.GenerateDone, frame.Opcode);
            Assert.Equal(FrameFlags.End, frame.Flags);
            Assert.Equal(text.ToString(), ((GenerateDone)frame.Body!).Text);
            break;
        }
        Assert.Equal(30u, expected);

        await using var client = host.Client();
        var pieces = new List<string>();
        await foreach (string piece in client.GenerateAsync(new GenerateRequest { Prompt = "p", MaxTokens = 5 })) pieces.Add(piece);
        Assert.Equal(["w0 ", "w1 ", "w2 ", "w3 ", "w4 "], pieces);
        var whole = await client.GenerateTextAsync(new GenerateRequest { Prompt = "p", MaxTokens = 3 });
        Assert.Equal("w0 w1 w2 ", whole.Text);
    }

    [Fact]
    public async Task One_connection_multiplexes_many_concurrent_calls()
    {
        await using var host = new InProcessServer(handlers: new ServerHandlers { Recommend = new EchoRecommender(), Generate = new WordGenerator(8) });
        await using var client = host.Client();
        var recommends = Enumerable.Range(0, 200).Select(i => client.RecommendAsync(new RecommendRequest { CustomerId = $"c{i}", K = 1 + i % 5 })).ToArray();
        var generates = Enumerable.Range(0, 20).Select(async i =>
        {
            var pieces = new List<string>();
            await foreach (var p in client.GenerateAsync(new GenerateRequest { Prompt = "p", MaxTokens = 8 })) pieces.Add(p);
            return string.Concat(pieces);
        }).ToArray();
        var results = await Task.WhenAll(recommends);
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal($"r-c{i}", results[i].RecommendationId);
            Assert.Equal(1 + i % 5, results[i].Items.Length);
        }
        foreach (string text in await Task.WhenAll(generates)) Assert.Equal("w0 w1 w2 w3 w4 w5 w6 w7 ", text);
        Assert.Equal(1, host.Server.ConnectionCount);
    }

    [Fact]
    public async Task A_cancelled_token_sends_Cancel_and_the_server_stops_the_work()
    {
        var blocking = new BlockingRecommender();
        await using var host = new InProcessServer(handlers: new ServerHandlers { Recommend = blocking });
        await using var client = host.Client();
        using var cts = new CancellationTokenSource();
        Task call = client.RecommendAsync(new RecommendRequest { CustomerId = "c" }, cts.Token);
        while (blocking.Started == 0) await Task.Delay(5);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await blocking.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // The connection still serves.
        Assert.Equal((byte)HealthStatus.Ok, (await client.HealthAsync()).Status);
    }

    [Fact]
    public async Task Cancel_frame_is_answered_with_Cancelled_on_its_stream()
    {
        var blocking = new BlockingRecommender();
        await using var host = new InProcessServer(handlers: new ServerHandlers { Recommend = blocking });
        var raw = new RawConnection(host.Connect().Client);
        await raw.HelloAsync();
        await raw.ReadAsync();
        await raw.SendAsync(Opcode.Recommend, 9, new RecommendRequest { CustomerId = "c" });
        while (blocking.Started == 0) await Task.Delay(5);
        await raw.SendBytesAsync(CancelFrame(9));
        Assert.Equal(ErrorCode.Cancelled, await raw.ReadErrorAsync(9));
    }

    private static byte[] CancelFrame(uint stream)
    {
        var bytes = new byte[16];
        new FrameHeader(Opcode.Cancel, FrameFlags.End, stream, 0).Write(bytes);
        return bytes;
    }

    [Fact]
    public async Task A_request_past_its_deadline_is_answered_DeadlineExceeded()
    {
        var blocking = new BlockingRecommender();
        await using var host = new InProcessServer(handlers: new ServerHandlers { Recommend = blocking });
        await using var client = host.Client();
        var e = await Assert.ThrowsAsync<EngineRequestException>(() => client.RecommendAsync(new RecommendRequest { CustomerId = "c", TimeoutMs = 50 }));
        Assert.Equal(ErrorCode.DeadlineExceeded, e.Code);
        await blocking.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Past_the_in_flight_limit_requests_are_answered_Overloaded()
    {
        var blocking = new BlockingRecommender();
        await using var host = new InProcessServer(new ServerOptions { MaxInFlightPerConnection = 2 }, new ServerHandlers { Recommend = blocking });
        await using var client = host.Client();
        Task<RecommendResult> first = client.RecommendAsync(new RecommendRequest { CustomerId = "a" });
        Task<RecommendResult> second = client.RecommendAsync(new RecommendRequest { CustomerId = "b" });
        while (blocking.Started < 2) await Task.Delay(5);
        var e = await Assert.ThrowsAsync<EngineOverloadedException>(() => client.RecommendAsync(new RecommendRequest { CustomerId = "c" }));
        Assert.Equal(TimeSpan.FromMilliseconds(50), e.RetryAfter);
        blocking.Release.SetResult();
        Assert.Equal("released", (await first).RecommendationId);
        Assert.Equal("released", (await second).RecommendationId);
    }

    private sealed class SheddingGenerator : IGenerateHandler
    {
        public Task<GenerateDone> GenerateAsync(GenerateRequest request, ITokenSink tokens, CancellationToken cancellationToken) =>
            throw new ServerOverloadedException("generation queue full", TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public async Task A_handler_that_sheds_load_gives_Overloaded_with_its_retry_delay()
    {
        await using var host = new InProcessServer(handlers: new ServerHandlers { Generate = new SheddingGenerator() });
        await using var client = host.Client();
        var e = await Assert.ThrowsAsync<EngineOverloadedException>(async () =>
        {
            await foreach (var _ in client.GenerateAsync(new GenerateRequest { Prompt = "p" })) { }
        });
        Assert.Equal(TimeSpan.FromMilliseconds(250), e.RetryAfter);
        Assert.Contains("generation queue full", e.Message);
    }

    [Fact]
    public async Task Events_are_batched_by_the_client_and_acknowledged_after_the_sink_took_them()
    {
        var sink = new CountingEventSink();
        await using var host = new InProcessServer(handlers: new ServerHandlers { Events = sink, StatsSources = [sink] });
        await using var client = host.Client(eventBatchSize: 10);
        var events = Enumerable.Range(0, 35).Select(i => new ShopperEvent { CustomerId = "c", Kind = (byte)(i % 2 == 0 ? EventKind.View : EventKind.Click), ProductId = $"p{i}" });
        Assert.Equal(35, await client.SendEventsAsync(events));
        Assert.Equal(35, sink.Total);
        Assert.Equal(18, sink.CountOf(EventKind.View));
        var stats = await client.StatsAsync();
        Assert.Equal(4 + 1, stats.Entries.Single(e => e.Name == "server.requests").Value); // 4 batches + this Stats
        Assert.Equal(35, stats.Entries.Single(e => e.Name == "events.accepted").Value);
    }

    [Fact]
    public async Task Shutdown_lets_requests_in_flight_finish_and_refuses_new_ones()
    {
        var blocking = new BlockingRecommender();
        var host = new InProcessServer(new ServerOptions { DrainTimeout = TimeSpan.FromSeconds(10) }, new ServerHandlers { Recommend = blocking });
        var raw = new RawConnection(host.Connect().Client);
        await raw.HelloAsync();
        await raw.ReadAsync();
        await raw.SendAsync(Opcode.Recommend, 1, new RecommendRequest { CustomerId = "c" });
        while (blocking.Started == 0) await Task.Delay(5);

        Task stopping = host.Server.StopAsync();
        var goAway = (await raw.ReadAsync())!.Value;
        Assert.Equal((Opcode.GoAway, 0u), (goAway.Opcode, goAway.Stream));
        await raw.SendAsync(Opcode.Recommend, 2, new RecommendRequest { CustomerId = "late" });
        Assert.Equal(ErrorCode.ShuttingDown, await raw.ReadErrorAsync(2));
        Assert.False(stopping.IsCompleted);

        blocking.Release.SetResult();
        var (op, body) = await raw.ReadTerminalAsync(1);
        Assert.Equal(Opcode.RecommendResult, op);
        Assert.Equal("released", ((RecommendResult)body!).RecommendationId);
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(await raw.ClosedAsync());
        await host.DisposeAsync();
    }
}
