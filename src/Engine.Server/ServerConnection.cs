using System.IO.Pipelines;
using System.Threading.Channels;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Server;

/// <summary>
/// One client connection: a receive loop that parses frames straight from the input pipe and
/// dispatches requests, a send loop that serializes answers straight into the output pipe, and the
/// requests in flight between them (by stream id). Partial files: Receive, Send, Dispatch.
/// </summary>
internal sealed partial class ServerConnection
{
    private readonly EngineServer _server;
    private readonly IDuplexPipe _transport;
    private readonly bool _isLoopback;
    private readonly ServerOptions _options;
    private readonly Channel<OutgoingFrame> _outgoing;
    // Requests in flight by stream id. A locked Dictionary rather than a ConcurrentDictionary: its entries are reused,
    // where the concurrent one allocates a node per request. Recommend requests ended without cancellation wait in
    // _spare for the next one (at most MaxInFlightPerConnection).
    private readonly Dictionary<uint, ActiveRequest> _active = [];
    private readonly Stack<ActiveRequest> _spare = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;
    private volatile bool _helloDone;
    private volatile bool _draining;
    private volatile bool _stopReading;
    private volatile bool _receiveEnded;
    private Roles _roles;

    public ServerConnection(EngineServer server, IDuplexPipe transport, bool isLoopback, long id)
    {
        _server = server;
        _transport = transport;
        _isLoopback = isLoopback;
        _options = server.Options;
        Id = id;
        _outgoing = Channel.CreateBounded<OutgoingFrame>(new BoundedChannelOptions(_options.SendQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
            // A waiting send loop resumes on the thread that queued the frame (serializes and writes the socket
            // there) instead of on another thread-pool thread: one wake-up less per answer.
            AllowSynchronousContinuations = true,
        });
    }

    public long Id { get; }

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Runs the connection to its end; never throws.</summary>
    public async Task RunAsync()
    {
        Task send = SendLoopAsync();
        Task watchdog = HelloWatchdogAsync();
        try
        {
            await ReceiveLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _server.CountError(ErrorCode.Internal);
            Abort();
        }
        // No more requests come in. Requests in flight finish (bounded by their deadlines) unless aborted.
        _receiveEnded = true;
        Thread.MemoryBarrier(); // the flag must be visible before the count is read (RequestEnded reads them the other way round)
        if (Volatile.Read(ref _inFlight) > 0) await _idle.Task.ConfigureAwait(false);
        _outgoing.Writer.TryComplete();
        await send.ConfigureAwait(false);
        _abort.Cancel();
        await watchdog.ConfigureAwait(false);
        await _transport.Input.CompleteAsync().ConfigureAwait(false);
        await _transport.Output.CompleteAsync().ConfigureAwait(false);
        lock (_spare)
            while (_spare.TryPop(out ActiveRequest? spare)) spare.Dispose();
        _abort.Dispose();
    }

    /// <summary>Stops reading, cancels every request in flight and lets queued frames go out.</summary>
    public void Abort()
    {
        StopReading();
        try { _abort.Cancel(); } catch (ObjectDisposedException) { }
    }

    private void StopReading()
    {
        _stopReading = true;
        _transport.Input.CancelPendingRead();
    }

    /// <summary>Graceful drain: GoAway, no new requests, wait for those in flight, then cancel the rest and close.</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        _draining = true;
        Thread.MemoryBarrier();
        _outgoing.Writer.TryWrite(new OutgoingFrame(Opcode.GoAway, FrameFlags.End, ProtocolConstants.ConnectionStream, new GoAway { Reason = "server shutting down" }));
        if (Volatile.Read(ref _inFlight) > 0) await Task.WhenAny(_idle.Task, Task.Delay(timeout)).ConfigureAwait(false);
        ActiveRequest[] active;
        lock (_active) active = [.. _active.Values];
        foreach (ActiveRequest request in active) request.Cancel(ErrorCode.ShuttingDown);
        StopReading();
    }

    private async Task HelloWatchdogAsync()
    {
        try
        {
            await Task.Delay(_options.HelloTimeout, _abort.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        if (_helloDone) return;
        SendControl(ErrorCode.HelloRequired, $"no Hello within {_options.HelloTimeout.TotalSeconds:0.###} s");
        StopReading();
    }

    /// <summary>Queues a connection-level error without waiting (a full queue means the client is not reading: drop it).</summary>
    private void SendControl(ErrorCode code, string message)
    {
        _server.CountError(code);
        _outgoing.Writer.TryWrite(new OutgoingFrame(Opcode.Error, FrameFlags.End, ProtocolConstants.ConnectionStream, ErrorBody.Of(code, message)));
    }

    /// <summary>Queues a frame, waiting while the send queue is full (backpressure to the producer).</summary>
    private ValueTask SendAsync(in OutgoingFrame frame) => _outgoing.Writer.WriteAsync(frame, _abort.Token);

    private ValueTask SendErrorAsync(uint streamId, ErrorCode code, string message)
    {
        _server.CountError(code);
        return SendAsync(new OutgoingFrame(Opcode.Error, FrameFlags.End, streamId, ErrorBody.Of(code, message)));
    }

    private bool TryGetActive(uint stream, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ActiveRequest? request)
    {
        lock (_active) return _active.TryGetValue(stream, out request);
    }

    /// <summary>A spare request of this connection, or a new one.</summary>
    private ActiveRequest RentRequest()
    {
        lock (_spare)
            if (_spare.TryPop(out ActiveRequest? spare)) return spare;
        return new ActiveRequest(this, _abort.Token);
    }

    /// <summary>
    /// Frees the stream id (before the terminal frame can reach the client, so it may reuse the id at once), then keeps
    /// a Recommend request for the next one if it ended uncancelled; any other is disposed. Nothing may use
    /// <paramref name="request"/> after this.
    /// </summary>
    private void EndRequest(ActiveRequest request)
    {
        lock (_active) _active.Remove(request.StreamId);
        if (request.Opcode == Opcode.Recommend && request.TryReset())
        {
            lock (_spare)
            {
                if (_spare.Count < _options.MaxInFlightPerConnection)
                {
                    _spare.Push(request);
                    return;
                }
            }
        }
        request.Dispose();
    }

    private void RequestEnded()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && (_receiveEnded || _draining)) _idle.TrySetResult();
    }
}
