namespace Engine.Runtime.Scheduling;

/// <summary>Limits of the <see cref="GenerationScheduler"/>.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Streams decoding together (each holds one KV cache).</summary>
    public int MaxStreams { get; init; } = 16;

    /// <summary>Streams waiting for a free slot; past this, <see cref="SchedulerOverloadedException"/>.</summary>
    public int MaxQueue { get; init; } = 64;

    /// <summary>
    /// KV cache positions per stream. Kept well below a model's declared context: 16 streams of the
    /// SmolLM2-135M shape (30 layers, kvDim 192, f32) take 16 × 30 × 2 × 192 × 4 B = 737 KB per position, 377 MB at 512.
    /// </summary>
    public int ContextLength { get; init; } = 512;

    /// <summary>Most prompt tokens one stream prefills in a step, so a long prompt never stalls the streams already decoding.</summary>
    public int PrefillChunk { get; init; } = 32;

    /// <summary>Most rows (decode tokens + prefill tokens of all streams) in one step.</summary>
    public int MaxBatchRows { get; init; } = 64;

    /// <summary>Retry delay suggested to callers refused for a full queue.</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        if (MaxStreams < 1) throw new ArgumentException($"max streams must be ≥ 1, found {MaxStreams}");
        if (MaxQueue < 0) throw new ArgumentException($"max queue must be ≥ 0, found {MaxQueue}");
        if (ContextLength < 2) throw new ArgumentException($"context length must be ≥ 2, found {ContextLength}");
        if (PrefillChunk < 1) throw new ArgumentException($"prefill chunk must be ≥ 1, found {PrefillChunk}");
        if (MaxBatchRows < MaxStreams) throw new ArgumentException($"max batch rows ({MaxBatchRows}) must be ≥ max streams ({MaxStreams}) so every stream decodes each step");
    }
}

/// <summary>The scheduler's streams and queue are full: nothing was started; retry after <see cref="RetryAfter"/>.</summary>
public sealed class SchedulerOverloadedException(string message, TimeSpan retryAfter) : Exception(message)
{
    /// <summary>Suggested delay before retrying.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;
}
