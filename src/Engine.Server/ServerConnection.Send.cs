using System.IO.Pipelines;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Server;

internal sealed partial class ServerConnection
{
    /// <summary>
    /// Drains the send queue into the output pipe, serializing each body in place, and flushes once per
    /// batch. A flush that does not complete within the send timeout (the client stopped reading and the
    /// output pipe is past its pause threshold) closes the connection.
    /// </summary>
    private async Task SendLoopAsync()
    {
        PipeWriter output = _transport.Output;
        var writer = new FrameWriter(_options.MaxBodyBytes);
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (_outgoing.Reader.TryRead(out OutgoingFrame frame))
                {
                    if (frame.Body is null)
                    {
                        FrameWriter.WriteEmpty(output, frame.Opcode, frame.Flags, frame.StreamId);
                        continue;
                    }
                    try
                    {
                        writer.WriteObject(output, frame.Opcode, frame.Flags, frame.StreamId, frame.Body);
                    }
                    catch (ProtocolException e) when (e.Code == ErrorCode.FrameTooLarge)
                    {
                        // An answer too large for one frame fails its request, not the connection.
                        writer.WriteObject(output, Opcode.Error, FrameFlags.End, frame.StreamId, ErrorBody.Of(ErrorCode.Internal, e.Message));
                    }
                    _server.CountFrameOut();
                }
                ValueTask<FlushResult> flushTask = output.FlushAsync();
                FlushResult flush = flushTask.IsCompleted
                    ? flushTask.Result
                    : await flushTask.AsTask().WaitAsync(_options.SendTimeout).ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled) break;
            }
        }
        catch (TimeoutException)
        {
            // The client does not read: stop everything for this connection; memory stays at the pause threshold.
            output.CancelPendingFlush();
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or OperationCanceledException)
        {
        }
        // Whatever ended the loop, nothing more can be sent: stop the rest of the connection.
        Abort();
        _outgoing.Writer.TryComplete();
        while (_outgoing.Reader.TryRead(out _)) { }
    }
}
