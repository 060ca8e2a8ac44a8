using System.Buffers;
using System.IO.Pipelines;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Server;

internal sealed partial class ServerConnection
{
    /// <summary>
    /// Parses frames from the input pipe without copying: each body is decoded from the pipe's own
    /// segments before AdvanceTo releases them. Returns when the client closes, on a fatal framing
    /// error (after queueing the error frame), or when reading is stopped.
    /// </summary>
    private async Task ReceiveLoopAsync()
    {
        PipeReader input = _transport.Input;
        int maxBody = _options.MaxBodyBytes;
        while (!_stopReading)
        {
            ReadResult result = await input.ReadAsync().ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            SequencePosition consumed = buffer.Start;
            SequencePosition examined = buffer.End;
            try
            {
                if (result.IsCanceled || _stopReading) return;
                while (true)
                {
                    FrameReadStatus status = FrameReader.TryParse(buffer, maxBody, out Frame frame, out SequencePosition frameEnd, out _);
                    if (status == FrameReadStatus.NeedMoreData) break;
                    if (status != FrameReadStatus.Complete)
                    {
                        // The stream cannot be resynchronised: say why, then close.
                        SendControl(status.ToErrorCode(), status switch
                        {
                            FrameReadStatus.BadMagic => "bad magic: expected \"ENGN\"",
                            FrameReadStatus.UnsupportedVersion => $"unsupported frame version (this server reads {ProtocolConstants.FrameVersion})",
                            _ => $"frame body longer than the maximum of {maxBody} bytes",
                        });
                        Abort();
                        return;
                    }
                    _server.CountFrameIn();
                    bool keepGoing = await HandleFrameAsync(frame).ConfigureAwait(false);
                    buffer = buffer.Slice(frameEnd);
                    consumed = buffer.Start;
                    if (!keepGoing)
                    {
                        Abort();
                        return;
                    }
                }
                // A frame cut off by the client closing is simply dropped: a clean close.
                if (result.IsCompleted) return;
            }
            finally
            {
                input.AdvanceTo(consumed, examined);
            }
        }
    }

    /// <summary>Handles one frame; false closes the connection (failed handshake).</summary>
    private async ValueTask<bool> HandleFrameAsync(Frame frame)
    {
        uint stream = frame.StreamId;
        Opcode op = frame.Opcode;
        switch (op)
        {
            case Opcode.Hello:
                return HandleHello(frame);
            case Opcode.Cancel:
                if (TryGetActive(stream, out ActiveRequest? target)) target.Cancel(ErrorCode.Cancelled);
                return true;
        }

        if (!OpcodeBodies.IsClientOpcode(op))
        {
            await SendErrorAsync(stream, ErrorCode.UnknownOpcode, $"opcode {(byte)op} is not a request this server accepts").ConfigureAwait(false);
            return true;
        }
        if (stream == ProtocolConstants.ConnectionStream)
        {
            await SendErrorAsync(stream, ErrorCode.BadStreamId, "requests need a non-zero stream id").ConfigureAwait(false);
            return true;
        }
        if (op != Opcode.Health && !_helloDone)
        {
            await SendErrorAsync(stream, ErrorCode.HelloRequired, "send Hello first").ConfigureAwait(false);
            return true;
        }
        Roles needed = OpcodeRoles.Required(op);
        if ((_roles & needed) != needed)
        {
            await SendErrorAsync(stream, ErrorCode.Forbidden, $"{op} needs the {needed.ToString().ToLowerInvariant()} role").ConfigureAwait(false);
            return true;
        }
        if (_draining)
        {
            await SendErrorAsync(stream, ErrorCode.ShuttingDown, "server shutting down").ConfigureAwait(false);
            return true;
        }
        if (Volatile.Read(ref _inFlight) >= _options.MaxInFlightPerConnection)
        {
            _server.CountOverloaded();
            await SendAsync(new OutgoingFrame(Opcode.Overloaded, FrameFlags.End, stream, new OverloadedBody
            {
                RetryAfterMs = (uint)_options.OverloadRetryAfter.TotalMilliseconds,
                Message = $"connection in-flight limit ({_options.MaxInFlightPerConnection}) reached",
            })).ConfigureAwait(false);
            return true;
        }

        object body;
        try
        {
            body = MessageSerializer.Deserialize(op, frame.Body);
        }
        catch (ProtocolException e)
        {
            await SendErrorAsync(stream, e.Code, e.Message).ConfigureAwait(false);
            return true;
        }

        uint timeoutMs = ((IRequestBody)body).TimeoutMs;
        TimeSpan deadline = timeoutMs == 0 ? _options.DefaultDeadline : TimeSpan.FromMilliseconds(timeoutMs);
        if (TryGetActive(stream, out _))
        {
            await SendErrorAsync(stream, ErrorCode.BadStreamId, $"stream {stream} already has a request in flight").ConfigureAwait(false);
            return true;
        }
        // Only this loop adds to _active, so the check above still holds here.
        ActiveRequest request = RentRequest();
        request.Start(stream, op, body, deadline);
        lock (_active) _active.Add(stream, request);
        Interlocked.Increment(ref _inFlight);
        _server.CountRequest();
        // Handlers run on the thread pool so a slow one never holds up this connection's reading. The request is its
        // own work item: no closure, delegate or task per request (nor the execution context, which nothing here uses).
        ThreadPool.UnsafeQueueUserWorkItem(request, preferLocal: false);
        return true;
    }

    private bool HandleHello(Frame frame)
    {
        if (_helloDone)
        {
            SendControl(ErrorCode.InvalidArgument, "Hello was already accepted on this connection");
            return true;
        }
        HelloRequest hello;
        try
        {
            hello = MessageSerializer.Deserialize<HelloRequest>(frame.Body);
        }
        catch (ProtocolException e)
        {
            SendControl(e.Code, e.Message);
            return false;
        }
        if (hello.ProtocolVersion == 0)
        {
            SendControl(ErrorCode.UnsupportedVersion, $"protocol version 0; this server speaks 1..{ProtocolConstants.ProtocolVersion}");
            return false;
        }
        Roles roles = _server.Authenticator.Authenticate(hello.ApiKey, _isLoopback);
        if (roles == Roles.None)
        {
            SendControl(ErrorCode.Unauthenticated, _options.LoopbackOnly
                ? "this server has no API keys configured and accepts loopback clients only"
                : "unknown API key");
            return false;
        }
        _roles = roles;
        _helloDone = true;
        _outgoing.Writer.TryWrite(new OutgoingFrame(Opcode.HelloOk, FrameFlags.End, ProtocolConstants.ConnectionStream, new HelloOk
        {
            ProtocolVersion = Math.Min(hello.ProtocolVersion, ProtocolConstants.ProtocolVersion),
            Capabilities = (ulong)_server.Handlers.Capabilities,
            Roles = (byte)roles,
            ServerName = _options.ServerName,
            MaxBodyBytes = (uint)_options.MaxBodyBytes,
            MaxInFlight = (uint)_options.MaxInFlightPerConnection,
        }));
        return true;
    }
}
