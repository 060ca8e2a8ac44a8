using System.Threading.Channels;
using Engine.Runtime.Generation;

namespace Engine.Runtime.Scheduling;

/// <summary>What a finished scheduled generation produced.</summary>
public sealed record ScheduledGenerationResult(string Text, int TokenCount, int PromptTokens, FinishReason FinishReason, ulong Seed, TimeSpan TimeToFirstToken);

/// <summary>
/// One submitted generation: its text pieces as they are produced, and its result. A cancelled or
/// failed stream completes <see cref="Pieces"/> with the exception and faults <see cref="Completion"/>.
/// </summary>
public sealed class GenerationStream
{
    private readonly Channel<string> _pieces = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource<ScheduledGenerationResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal GenerationStream(int[] promptIds, GenerationOptions options, CancellationToken cancellationToken)
    {
        PromptIds = promptIds;
        Options = options;
        CancellationToken = cancellationToken;
    }

    internal int[] PromptIds { get; }
    internal GenerationOptions Options { get; }
    internal CancellationToken CancellationToken { get; }
    internal long SubmittedAt { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>Printable text pieces, in order (never splitting a character).</summary>
    public ChannelReader<string> Pieces => _pieces.Reader;

    /// <summary>The result, once the stream ends.</summary>
    public Task<ScheduledGenerationResult> Completion => _completion.Task;

    internal void Emit(string text)
    {
        if (text.Length > 0) _pieces.Writer.TryWrite(text);
    }

    internal void Complete(ScheduledGenerationResult result)
    {
        _pieces.Writer.TryComplete();
        _completion.TrySetResult(result);
    }

    internal void Fail(Exception error)
    {
        _pieces.Writer.TryComplete(error);
        if (error is OperationCanceledException oce) _completion.TrySetCanceled(oce.CancellationToken);
        else _completion.TrySetException(error);
        _ = _completion.Task.Exception; // observed by Pieces' reader
    }
}
