using System.Buffers;
using System.IO.Pipelines;
using Engine.Client;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Server;
using Engine.Server.Handlers;

namespace Engine.Server.Tests;

/// <summary>A server served over in-process duplex pipes; clients and raw frame connections attach to it.</summary>
internal sealed class InProcessServer : IAsyncDisposable
{
    private readonly List<Task> _connections = [];

    public InProcessServer(ServerOptions? options = null, ServerHandlers? handlers = null)
    {
        Server = new EngineServer(options ?? new ServerOptions(), handlers ?? new ServerHandlers());
    }

    public EngineServer Server { get; }

    /// <summary>Opens a connection; returns the client end and the server's task for it.</summary>
    public (DuplexPipe Client, Task Served) Connect(bool isLoopback = true, PipeOptions? serverToClient = null)
    {
        var (client, server) = DuplexPipe.CreatePair(serverToClient: serverToClient);
        Task served = Server.ServeAsync(server, isLoopback);
        lock (_connections) _connections.Add(served);
        return (client, served);
    }

    public EngineClient Client(string apiKey = "", uint defaultTimeoutMs = 0, int eventBatchSize = 500) => new(new EngineClientOptions
    {
        ApiKey = apiKey,
        DefaultTimeoutMs = defaultTimeoutMs,
        EventBatchSize = eventBatchSize,
        TransportFactory = _ => ValueTask.FromResult<IDuplexPipe>(Connect().Client),
    });

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Task[] all;
        lock (_connections) all = _connections.ToArray();
        await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(20));
    }
}

/// <summary>Writes raw frames and reads answers on one connection, for malformed-input tests.</summary>
internal sealed class RawConnection(DuplexPipe pipe)
{
    private readonly FrameWriter _writer = new(int.MaxValue);

    public async Task SendAsync<T>(Opcode opcode, uint stream, T body)
    {
        _writer.Write(pipe.Output, opcode, FrameFlags.End, stream, body);
        await pipe.Output.FlushAsync();
    }

    public async Task SendBytesAsync(byte[] bytes)
    {
        await pipe.Output.WriteAsync(bytes);
    }

    public Task HelloAsync(string key = "") => SendAsync(Opcode.Hello, 0, new HelloRequest { ApiKey = key });

    /// <summary>Reads the next frame (decoded body), or null when the server closed the connection.</summary>
    public async Task<(Opcode Opcode, uint Stream, FrameFlags Flags, object? Body)?> ReadAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            ReadResult result = await pipe.Input.ReadAsync(cts.Token);
            ReadOnlySequence<byte> buffer = result.Buffer;
            FrameReadStatus status = FrameReader.TryParse(buffer, int.MaxValue, out Frame frame, out SequencePosition consumed, out SequencePosition examined);
            if (status == FrameReadStatus.Complete)
            {
                object? body = frame.Header.Length == 0 ? null : MessageSerializer.Deserialize(frame.Opcode, frame.Body);
                var answer = (frame.Opcode, frame.StreamId, frame.Header.Flags, body);
                pipe.Input.AdvanceTo(consumed, examined);
                return answer;
            }
            Assert.Equal(FrameReadStatus.NeedMoreData, status);
            pipe.Input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) return null;
        }
    }

    /// <summary>Reads until the frame for <paramref name="stream"/> that ends it.</summary>
    public async Task<(Opcode Opcode, object? Body)> ReadTerminalAsync(uint stream)
    {
        while (true)
        {
            var frame = await ReadAsync() ?? throw new InvalidOperationException("connection closed");
            if (frame.Stream == stream && (frame.Flags & FrameFlags.End) != 0) return (frame.Opcode, frame.Body);
        }
    }

    public async Task<ErrorCode> ReadErrorAsync(uint stream)
    {
        var (op, body) = await ReadTerminalAsync(stream);
        Assert.Equal(Opcode.Error, op);
        return ((ErrorBody)body!).ErrorCode;
    }

    /// <summary>True once the server has closed its side (after draining what it sent).</summary>
    public async Task<bool> ClosedAsync()
    {
        while (true)
        {
            var frame = await ReadAsync();
            if (frame is null) return true;
        }
    }
}

/// <summary>Recommend handler that echoes the customer id as the only product.</summary>
internal sealed class EchoRecommender : IRecommendHandler
{
    public ValueTask<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new RecommendResult
        {
            RecommendationId = "r-" + request.CustomerId,
            Items = Enumerable.Range(0, request.K).Select(i => new RecommendedItem { ProductId = $"{request.CustomerId}-{i}", Score = request.K - i }).ToArray(),
            ModelVersion = "echo",
        });
}

/// <summary>Recommend handler that blocks until cancelled or released, recording what cancelled it.</summary>
internal sealed class BlockingRecommender : IRecommendHandler
{
    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _started;
    public int Started => Volatile.Read(ref _started);

    public async ValueTask<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _started);
        try
        {
            await Release.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Cancelled.TrySetResult();
            throw;
        }
        return new RecommendResult { RecommendationId = "released" };
    }
}

/// <summary>Generate handler that writes "w0 w1 ... " word by word.</summary>
internal sealed class WordGenerator(int words = 20) : IGenerateHandler
{
    public async Task<GenerateDone> GenerateAsync(GenerateRequest request, ITokenSink tokens, CancellationToken cancellationToken)
    {
        var text = new System.Text.StringBuilder();
        int n = Math.Min(words, request.MaxTokens);
        for (int i = 0; i < n; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string piece = $"w{i} ";
            text.Append(piece);
            await tokens.WriteAsync(piece, cancellationToken);
        }
        return new GenerateDone { Text = text.ToString(), TokenCount = n, FinishReason = (byte)FinishReason.MaxTokens, ModelVersion = "words" };
    }
}
