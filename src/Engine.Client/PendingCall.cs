using System.Buffers;
using System.Threading.Channels;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Client;

/// <summary>A request waiting for its answer frames, by stream id. Frames are decoded in the receive loop, before the buffer is released.</summary>
internal abstract class PendingCall
{
    /// <summary>Handles one frame of this stream; returns true when it was terminal.</summary>
    public abstract bool OnFrame(Opcode opcode, FrameFlags flags, in ReadOnlySequence<byte> body);

    /// <summary>Fails the call (connection lost, cancelled).</summary>
    public abstract void Fail(Exception error);

    /// <summary>The exception for an Error or Overloaded frame.</summary>
    protected static Exception ErrorOf(Opcode opcode, in ReadOnlySequence<byte> body)
    {
        if (opcode == Opcode.Overloaded)
        {
            var overloaded = MessageSerializer.Deserialize<OverloadedBody>(body);
            return new EngineOverloadedException(TimeSpan.FromMilliseconds(overloaded.RetryAfterMs), overloaded.Message ?? "");
        }
        var error = MessageSerializer.Deserialize<ErrorBody>(body);
        return new EngineRequestException(error.ErrorCode, error.Message ?? "");
    }
}

/// <summary>One request, one answer.</summary>
internal sealed class UnaryCall<T>(Opcode expected) : PendingCall where T : class
{
    private readonly TaskCompletionSource<T> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Task => _result.Task;

    public override bool OnFrame(Opcode opcode, FrameFlags flags, in ReadOnlySequence<byte> body)
    {
        try
        {
            if (opcode == expected) _result.TrySetResult(MessageSerializer.Deserialize<T>(body));
            else if (opcode is Opcode.Error or Opcode.Overloaded) _result.TrySetException(ErrorOf(opcode, body));
            else _result.TrySetException(new EngineConnectionException($"unexpected {opcode} answer to a request expecting {expected}"));
        }
        catch (ProtocolException e)
        {
            _result.TrySetException(new EngineConnectionException($"undecodable {opcode} answer: {e.Message}", e));
        }
        return true;
    }

    public override void Fail(Exception error) => _result.TrySetException(error);
}

/// <summary>Generate: streamed pieces, then GenerateDone.</summary>
internal sealed class GenerateCall : PendingCall
{
    private readonly Channel<string> _pieces = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource<GenerateDone> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private uint _nextSequence;

    public ChannelReader<string> Pieces => _pieces.Reader;

    public Task<GenerateDone> Done => _done.Task;

    public override bool OnFrame(Opcode opcode, FrameFlags flags, in ReadOnlySequence<byte> body)
    {
        try
        {
            switch (opcode)
            {
                case Opcode.GenerateToken:
                    var token = MessageSerializer.Deserialize<GenerateToken>(body);
                    if (token.Sequence != _nextSequence)
                    {
                        Fail(new EngineConnectionException($"token sequence {token.Sequence} where {_nextSequence} was expected"));
                        return true;
                    }
                    _nextSequence++;
                    _pieces.Writer.TryWrite(token.Text ?? "");
                    return false;
                case Opcode.GenerateDone:
                    _done.TrySetResult(MessageSerializer.Deserialize<GenerateDone>(body));
                    _pieces.Writer.TryComplete();
                    return true;
                case Opcode.Error or Opcode.Overloaded:
                    Fail(ErrorOf(opcode, body));
                    return true;
                default:
                    Fail(new EngineConnectionException($"unexpected {opcode} on a Generate stream"));
                    return true;
            }
        }
        catch (ProtocolException e)
        {
            Fail(new EngineConnectionException($"undecodable {opcode} frame: {e.Message}", e));
            return true;
        }
    }

    public override void Fail(Exception error)
    {
        _done.TrySetException(error);
        _done.Task.Exception?.Handle(_ => true); // observed through Pieces; avoid unobserved-task noise
        _pieces.Writer.TryComplete(error);
    }
}
