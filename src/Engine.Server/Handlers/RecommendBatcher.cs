using Engine.Protocol.Messages;

namespace Engine.Server.Handlers;

/// <summary>
/// A ranking that answers many Recommends with one pass over the catalog (one index scan for the
/// whole batch reads every product vector once instead of once per request).
/// </summary>
public interface IBatchRecommendHandler
{
    /// <summary>
    /// Answers <paramref name="requests"/> (already validated: k in 1..1000), answer i for request i:
    /// a result, or an error for that request alone (a <see cref="Protocol.ProtocolException"/> gives
    /// the client its code). An exception thrown from here fails every request of the batch.
    /// </summary>
    BatchAnswer<RecommendResult>[] RecommendBatch(IReadOnlyList<RecommendRequest> requests);
}

/// <summary>One item's answer from a batched call: its result, or the error for that item alone.</summary>
public readonly struct BatchAnswer<T>
{
    private BatchAnswer(T? result, Exception? error)
    {
        Result = result;
        Error = error;
    }

    /// <summary>The result (null when <see cref="Error"/> is set).</summary>
    public T? Result { get; }

    /// <summary>Why this item failed, or null.</summary>
    public Exception? Error { get; }

    /// <summary>A result.</summary>
    public static BatchAnswer<T> Ok(T result) => new(result, null);

    /// <summary>A failure of this item only.</summary>
    public static BatchAnswer<T> Fail(Exception error) => new(default, error ?? throw new ArgumentNullException(nameof(error)));

    /// <summary>A result.</summary>
    public static implicit operator BatchAnswer<T>(T result) => Ok(result);
}

/// <summary>
/// Micro-batching in front of an <see cref="IBatchRecommendHandler"/> (see <see cref="MicroBatcher{TItem, TResult}"/>):
/// concurrent Recommends from any connections that wait while a scan runs are served together by the
/// next one, so the catalog is read once per batch rather than once per request. Past the queue bound
/// a Recommend gets <see cref="ServerOverloadedException"/> (the Overloaded frame).
/// </summary>
public sealed class RecommendBatcher : IRecommendHandler, IStatsSource, IAsyncDisposable
{
    private readonly MicroBatcher<RecommendRequest, RecommendResult> _batcher;

    /// <summary>Starts the workers.</summary>
    public RecommendBatcher(IBatchRecommendHandler inner, MicroBatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _batcher = new MicroBatcher<RecommendRequest, RecommendResult>(inner.RecommendBatch, options, "recommend");
    }

    /// <summary>The batcher's counters.</summary>
    public MicroBatcher<RecommendRequest, RecommendResult> Batcher => _batcher;

    /// <inheritdoc/>
    public ValueTask<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken) =>
        _batcher.SubmitAsync(request, cancellationToken);

    /// <inheritdoc/>
    public void Collect(ICollection<StatEntry> entries) => _batcher.Collect(entries);

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => _batcher.DisposeAsync();
}
