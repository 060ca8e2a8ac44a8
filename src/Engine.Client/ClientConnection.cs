using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Client;

/// <summary>
/// One connection to the server: a send path (one writer at a time, frames written straight into the
/// pipe) and a receive loop that routes answer frames to their pending calls by stream id.
/// </summary>
internal sealed class ClientConnection : IAsyncDisposable
{
    private readonly IDuplexPipe _pipe;
    private readonly Stream? _stream;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly FrameWriter _writer = new(int.MaxValue);
    private readonly ConcurrentDictionary<uint, PendingCall> _pending = new();
    private Task _receiveLoop = Task.CompletedTask;
    private int _nextStream;
    private volatile bool _closed;
    private volatile bool _goingAway;

    private ClientConnection(IDuplexPipe pipe, Stream? stream)
    {
        _pipe = pipe;
        _stream = stream;
    }

    /// <summary>The server's handshake answer (null for a probe connection without Hello).</summary>
    public HelloOk? Hello { get; private set; }

    /// <summary>False once the connection is lost or the server said GoAway: new calls need a new connection.</summary>
    public bool IsUsable => !_closed && !_goingAway;

    public static async Task<ClientConnection> OpenAsync(EngineClientOptions options, bool sendHello, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        CancellationToken token = timeout.Token;
        ClientConnection connection;
        if (options.TransportFactory is { } factory)
        {
            connection = new ClientConnection(await factory(token).ConfigureAwait(false), null);
        }
        else
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(options.Host, options.Port, token).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (options.UseTls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false, options.ServerCertificateValidation);
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = options.TlsTargetHost ?? options.Host }, token).ConfigureAwait(false);
                stream = ssl;
            }
            connection = new ClientConnection(new Pipe2(PipeReader.Create(stream), PipeWriter.Create(stream)), stream);
        }

        try
        {
            if (sendHello) await connection.HandshakeAsync(options, token).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        connection._receiveLoop = connection.ReceiveLoopAsync();
        return connection;
    }

    private sealed class Pipe2(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    private async Task HandshakeAsync(EngineClientOptions options, CancellationToken token)
    {
        _writer.Write(_pipe.Output, Opcode.Hello, FrameFlags.End, ProtocolConstants.ConnectionStream, new HelloRequest
        {
            ProtocolVersion = ProtocolConstants.ProtocolVersion,
            ApiKey = options.ApiKey,
            ClientName = options.ClientName,
        });
        await _pipe.Output.FlushAsync(token).ConfigureAwait(false);
        while (true)
        {
            ReadResult result = await _pipe.Input.ReadAsync(token).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            FrameReadStatus status = FrameReader.TryParse(buffer, int.MaxValue, out Frame frame, out SequencePosition consumed, out SequencePosition examined);
            try
            {
                if (status == FrameReadStatus.Complete)
                {
                    if (frame.Opcode == Opcode.HelloOk)
                    {
                        Hello = MessageSerializer.Deserialize<HelloOk>(frame.Body);
                        return;
                    }
                    if (frame.Opcode == Opcode.Error)
                    {
                        var error = MessageSerializer.Deserialize<ErrorBody>(frame.Body);
                        throw new EngineRequestException(error.ErrorCode, error.Message ?? "");
                    }
                    // Anything else before HelloOk (GoAway) is skipped.
                    continue;
                }
                if (status != FrameReadStatus.NeedMoreData) throw new EngineConnectionException($"bad frame from the server: {status}");
                if (result.IsCompleted) throw new EngineConnectionException("the server closed the connection during the handshake");
            }
            finally
            {
                _pipe.Input.AdvanceTo(status == FrameReadStatus.Complete ? consumed : buffer.Start, examined);
            }
        }
    }

    /// <summary>Registers <paramref name="call"/> under a fresh stream id.</summary>
    public uint Register(PendingCall call)
    {
        while (true)
        {
            uint id = (uint)Interlocked.Increment(ref _nextStream);
            if (id == 0) continue;
            if (_pending.TryAdd(id, call))
            {
                if (_closed && _pending.TryRemove(id, out _)) throw new EngineConnectionException("connection lost");
                return id;
            }
        }
    }

    /// <summary>Forgets a call (its answer, if any, is dropped) and tells the server to stop it.</summary>
    public void Cancel(uint streamId)
    {
        if (!_pending.TryRemove(streamId, out _) || _closed) return;
        _ = SendCancelAsync(streamId);
    }

    public void Forget(uint streamId) => _pending.TryRemove(streamId, out _);

    private async Task SendCancelAsync(uint streamId)
    {
        try
        {
            await _sendLock.WaitAsync().ConfigureAwait(false);
            try
            {
                FrameWriter.WriteEmpty(_pipe.Output, Opcode.Cancel, FrameFlags.End, streamId);
                await _pipe.Output.FlushAsync().ConfigureAwait(false);
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    /// <summary>Sends one request frame.</summary>
    public async Task SendAsync<T>(Opcode opcode, uint streamId, T body, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_closed) throw new EngineConnectionException("connection lost");
            _writer.Write(_pipe.Output, opcode, FrameFlags.End, streamId, body);
            FlushResult flush = await _pipe.Output.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (flush.IsCompleted) throw new EngineConnectionException("connection closed by the server");
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
        {
            throw new EngineConnectionException("send failed: " + e.Message, e);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        Exception? failure = null;
        try
        {
            PipeReader input = _pipe.Input;
            while (true)
            {
                ReadResult result = await input.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                try
                {
                    while (true)
                    {
                        FrameReadStatus status = FrameReader.TryParse(buffer, int.MaxValue, out Frame frame, out SequencePosition end, out _);
                        if (status == FrameReadStatus.NeedMoreData) break;
                        if (status != FrameReadStatus.Complete) throw new EngineConnectionException($"bad frame from the server: {status}");
                        Route(frame);
                        buffer = buffer.Slice(end);
                    }
                    if (result.IsCompleted || result.IsCanceled) break;
                }
                finally
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failure = e;
        }
        Close(failure is EngineConnectionException or EngineRequestException ? failure : new EngineConnectionException("connection lost", failure));
    }

    private void Route(Frame frame)
    {
        if (frame.StreamId == ProtocolConstants.ConnectionStream)
        {
            if (frame.Opcode == Opcode.GoAway) _goingAway = true;
            else if (frame.Opcode == Opcode.Error)
            {
                var error = MessageSerializer.Deserialize<ErrorBody>(frame.Body);
                throw new EngineRequestException(error.ErrorCode, error.Message ?? "");
            }
            return;
        }
        if (_pending.TryGetValue(frame.StreamId, out PendingCall? call) && call.OnFrame(frame.Opcode, frame.Header.Flags, frame.Body))
            _pending.TryRemove(frame.StreamId, out _);
    }

    private void Close(Exception reason)
    {
        _closed = true;
        foreach (uint id in _pending.Keys)
            if (_pending.TryRemove(id, out PendingCall? call)) call.Fail(reason);
    }

    public async ValueTask DisposeAsync()
    {
        _closed = true;
        await _pipe.Output.CompleteAsync().ConfigureAwait(false);
        _pipe.Input.CancelPendingRead();
        if (_stream is not null) await _stream.DisposeAsync().ConfigureAwait(false);
        await _receiveLoop.ConfigureAwait(false);
        await _pipe.Input.CompleteAsync().ConfigureAwait(false);
        Close(new EngineConnectionException("client disposed"));
    }
}
