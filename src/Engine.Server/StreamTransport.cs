using System.IO.Pipelines;

namespace Engine.Server;

/// <summary>
/// Bridges a byte stream (NetworkStream, SslStream) to pipes with explicit thresholds: the input pipe
/// pauses the socket read when the connection does not keep up, and the output pipe pauses the send
/// loop when the client does not read (memory stays bounded either way). Kestrel's SocketConnection shape.
/// </summary>
internal sealed class StreamTransport : IDuplexPipe, IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly Task _receive;
    private readonly Task _send;

    public StreamTransport(Stream stream, long inputPauseBytes, long outputPauseBytes)
    {
        _stream = stream;
        // Readers resume inline: the connection's receive loop runs on the thread that read the socket, and the
        // socket write on the thread of the send loop's flush, instead of each hopping to a thread-pool thread
        // (two wake-ups less per request; both loops only parse or copy, handlers run on the thread pool).
        _input = new Pipe(new PipeOptions(readerScheduler: PipeScheduler.Inline, pauseWriterThreshold: inputPauseBytes, resumeWriterThreshold: inputPauseBytes / 2, useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(readerScheduler: PipeScheduler.Inline, pauseWriterThreshold: outputPauseBytes, resumeWriterThreshold: outputPauseBytes / 2, useSynchronizationContext: false));
        _receive = ReceiveAsync();
        _send = SendAsync();
    }

    public PipeReader Input => _input.Reader;
    public PipeWriter Output => _output.Writer;

    private async Task ReceiveAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                Memory<byte> memory = _input.Writer.GetMemory(4096);
                int read = await _stream.ReadAsync(memory).ConfigureAwait(false);
                if (read == 0) break;
                _input.Writer.Advance(read);
                FlushResult flush = await _input.Writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled) break;
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            error = e;
        }
        // A reset or closed socket ends the input like an orderly close: the connection loop sees IsCompleted.
        _ = error;
        await _input.Writer.CompleteAsync().ConfigureAwait(false);
    }

    private async Task SendAsync()
    {
        try
        {
            while (true)
            {
                ReadResult result = await _output.Reader.ReadAsync().ConfigureAwait(false);
                foreach (ReadOnlyMemory<byte> segment in result.Buffer)
                    await _stream.WriteAsync(segment).ConfigureAwait(false);
                _output.Reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled) break;
            }
            await _stream.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
        }
        await _output.Reader.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>Stops both pumps and closes the stream.</summary>
    public async ValueTask DisposeAsync()
    {
        // The connection has completed its ends; let the send pump finish what was written, briefly.
        await Task.WhenAny(_send, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        _input.Reader.CancelPendingRead();
        await Task.WhenAll(_receive, _send).ConfigureAwait(false);
    }
}
