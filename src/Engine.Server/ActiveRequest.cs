using Engine.Protocol;

namespace Engine.Server;

/// <summary>A request in flight on one connection: its stream id and what cancels it (client Cancel, deadline, shutdown).</summary>
internal sealed class ActiveRequest : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private int _reason; // ErrorCode set by the first canceller

    public ActiveRequest(uint streamId, Opcode opcode, TimeSpan deadline, CancellationToken connectionAborted)
    {
        StreamId = streamId;
        Opcode = opcode;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(connectionAborted);
        _cts.CancelAfter(deadline);
    }

    public uint StreamId { get; }
    public Opcode Opcode { get; }
    public CancellationToken Token => _cts.Token;

    /// <summary>Why it was cancelled: Cancelled (client), ShuttingDown, or DeadlineExceeded when nobody said.</summary>
    public ErrorCode Reason => _reason == 0 ? ErrorCode.DeadlineExceeded : (ErrorCode)_reason;

    public void Cancel(ErrorCode reason)
    {
        Interlocked.CompareExchange(ref _reason, (int)reason, 0);
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
    }

    public void Dispose() => _cts.Dispose();
}
