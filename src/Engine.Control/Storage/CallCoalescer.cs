namespace Engine.Control.Storage;

/// <summary>Group commit of small operations into store calls: at most <c>maxInFlight</c> calls outstanding, and
/// the operations queued meanwhile go out together in the next call (<c>take</c> decides how many one call carries,
/// at least one). The journal's appends (<see cref="RedisEventJournal"/>) and the sessions' batched checkpoint
/// commands (<see cref="ScriptBatcher"/>) share it: the write size follows the load.</summary>
/// <typeparam name="T">An operation; the send function completes each it carries (its own completion source).</typeparam>
internal sealed class CallCoalescer<T>(int maxInFlight, Func<Queue<T>, List<T>> take)
{
    private readonly Lock _gate = new();
    private readonly Queue<T> _queue = new(); // operations waiting for a call slot, in arrival order
    private int _inFlight;

    /// <summary>Queues <paramref name="operations"/> in order and starts calls while slots are free. <paramref name="send"/>
    /// makes one call for the operations given and completes them (success or failure): it must not throw. A started call
    /// keeps calling with the same <paramref name="send"/> while operations are queued.</summary>
    public void Submit(ReadOnlySpan<T> operations, Func<List<T>, Task> send)
    {
        List<List<T>>? calls = null;
        lock (_gate)
        {
            foreach (var op in operations) _queue.Enqueue(op);
            while (_inFlight < maxInFlight && _queue.Count > 0)
            {
                (calls ??= []).Add(take(_queue));
                _inFlight++;
            }
        }
        // Started in order from this thread, so the parts of one submission reach the store in order.
        if (calls is not null) foreach (var call in calls) _ = RunAsync(call, send);
    }

    /// <summary>Sends one call, then keeps calling while operations are queued.</summary>
    private async Task RunAsync(List<T> call, Func<List<T>, Task> send)
    {
        while (true)
        {
            await send(call).ConfigureAwait(false);
            lock (_gate)
            {
                if (_queue.Count == 0) { _inFlight--; return; }
                call = take(_queue);
            }
        }
    }
}
