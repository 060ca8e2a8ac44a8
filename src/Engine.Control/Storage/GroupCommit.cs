namespace Engine.Control.Storage;

/// <summary>Group commit for a reentrant grain: callers mark state dirty, then await
/// <see cref="CommitAsync"/>; at most one write runs at a time, and every change made while it runs
/// rides on the next single write. A caller's task completes only once a write that started after
/// its change has succeeded, so an acknowledgement always means durable.</summary>
/// <remarks>Must be used from the grain's own scheduler (single-threaded turns), which is what makes
/// the fields safe without locks.</remarks>
internal sealed class GroupCommit(Func<Task> write)
{
    private TaskCompletionSource? _inFlight; // the write running now
    private TaskCompletionSource? _next;     // the write that will cover changes made since _inFlight started
    private bool _dirty;                     // changes not covered by any started write

    /// <summary>Writes started (for tests and stats).</summary>
    public long Writes { get; private set; }

    /// <summary>Records that state changed and needs a write.</summary>
    public void MarkDirty() => _dirty = true;

    /// <summary>Completes once every change marked so far is durable.</summary>
    public Task CommitAsync()
    {
        if (!_dirty)
            return _next?.Task ?? _inFlight?.Task ?? Task.CompletedTask;
        if (_next is { } scheduled) return scheduled.Task;
        var next = _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_inFlight is null) StartNext();
        return next.Task;
    }

    private void StartNext()
    {
        _inFlight = _next!;
        _next = null;
        _dirty = false;
        Writes++;
        _ = RunAsync(_inFlight);
    }

    private async Task RunAsync(TaskCompletionSource done)
    {
        try
        {
            await write();
            done.SetResult();
        }
        catch (Exception ex)
        {
            // The state still holds the changes: the next commit must write them again.
            _dirty = true;
            done.SetException(ex);
        }
        _inFlight = null;
        if (_next is not null) StartNext();
    }
}
