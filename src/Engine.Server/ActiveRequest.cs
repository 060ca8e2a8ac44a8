using System.Runtime.CompilerServices;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Server;

/// <summary>
/// A request in flight on one connection: its stream id, its decoded body and what cancels it (client Cancel,
/// deadline, shutdown). It is also the thread-pool work item that runs the request (no closure, delegate or task per
/// dispatch) and, for Recommend, the continuation that finishes it (no async state machine per request). Recommend
/// requests are recycled by their connection (<see cref="TryReset"/>): the cancellation source and its deadline timer
/// are reused, so a Recommend that was not cancelled allocates none of them.
/// </summary>
internal sealed class ActiveRequest : IThreadPoolWorkItem, IDisposable
{
    private readonly ServerConnection _connection;
    private readonly CancellationTokenSource _cts;
    private readonly Action _onRecommendDone;
    private ConfiguredValueTaskAwaitable<RecommendResult>.ConfiguredValueTaskAwaiter _recommend;
    private int _reason; // ErrorCode set by the first canceller

    public ActiveRequest(ServerConnection connection, CancellationToken connectionAborted)
    {
        _connection = connection;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(connectionAborted);
        _onRecommendDone = OnRecommendDone;
    }

    public uint StreamId { get; private set; }
    public Opcode Opcode { get; private set; }

    /// <summary>The decoded request body (an <see cref="IRequestBody"/>); null once the request ended.</summary>
    public object? Body { get; private set; }

    public CancellationToken Token => _cts.Token;

    /// <summary>Why it was cancelled: Cancelled (client), ShuttingDown, or DeadlineExceeded when nobody said.</summary>
    public ErrorCode Reason => _reason == 0 ? ErrorCode.DeadlineExceeded : (ErrorCode)_reason;

    /// <summary>Arms the request for a new stream: its body and its deadline (the timer starts now).</summary>
    public void Start(uint streamId, Opcode opcode, object body, TimeSpan deadline)
    {
        StreamId = streamId;
        Opcode = opcode;
        Body = body;
        _reason = 0;
        _cts.CancelAfter(deadline);
    }

    public void Cancel(ErrorCode reason)
    {
        Interlocked.CompareExchange(ref _reason, (int)reason, 0);
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// <summary>
    /// Makes an ended request reusable: false when it was cancelled (or its deadline fired), so a source that anything
    /// may still observe as cancelled is never handed to another request. Stops the deadline timer and drops any
    /// registration left on the token.
    /// </summary>
    public bool TryReset()
    {
        Body = null;
        _recommend = default;
        return _cts.TryReset();
    }

    /// <summary>Runs on the thread pool (queued by the receive loop).</summary>
    void IThreadPoolWorkItem.Execute() => _connection.Run(this);

    /// <summary>Finishes the Recommend when the handler's answer arrives (<see cref="ServerConnection.Run"/>).</summary>
    public void AwaitRecommend(ValueTask<RecommendResult> pending)
    {
        _recommend = pending.ConfigureAwait(false).GetAwaiter();
        _recommend.UnsafeOnCompleted(_onRecommendDone);
    }

    private void OnRecommendDone()
    {
        var awaiter = _recommend;
        _recommend = default;
        _connection.CompleteRecommend(this, awaiter);
    }

    public void Dispose() => _cts.Dispose();
}
