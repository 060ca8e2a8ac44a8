namespace Engine.Runtime.Generation;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>The model produced an end-of-generation token (EOS/EOT).</summary>
    EndOfGeneration = 0,

    /// <summary><see cref="GenerationOptions.MaxTokens"/> tokens were generated.</summary>
    MaxTokens = 1,

    /// <summary>The text reached a stop sequence.</summary>
    StopSequence = 2,

    /// <summary>The KV cache has no position left.</summary>
    ContextFull = 3,

    /// <summary>The caller's cancellation token fired.</summary>
    Cancelled = 4,
}

/// <summary>
/// One generated token as it streams out: its id and the text that became printable with it. Text
/// can be empty (an incomplete UTF-8 sequence, or text held back because it may start a stop
/// sequence) and can carry held-back text of earlier tokens.
/// </summary>
public readonly record struct GeneratedToken(int Id, string Text);

/// <summary>The outcome of one <see cref="Generator.Generate(ReadOnlySpan{int}, GenerationOptions, Action{GeneratedToken}?, CancellationToken)"/> call.</summary>
public sealed record GenerationResult
{
    /// <summary>The ids the prompt was made of.</summary>
    public required int[] PromptIds { get; init; }

    /// <summary>The generated ids, an end-of-generation token included when it ended the run.</summary>
    public required int[] TokenIds { get; init; }

    /// <summary>The completion text (empty without a tokenizer), cut before a stop sequence.</summary>
    public required string Text { get; init; }

    public required FinishReason FinishReason { get; init; }

    /// <summary>The sampler's seed (the one given, or the random one chosen): reproduces the run.</summary>
    public required ulong Seed { get; init; }

    /// <summary>Time of the prompt's forward pass (all prompt tokens, batched).</summary>
    public required TimeSpan PrefillTime { get; init; }

    /// <summary>Time of the one-token forward steps and sampling after the prefill.</summary>
    public required TimeSpan DecodeTime { get; init; }

    /// <summary>Number of one-token forward steps (generated tokens minus the one sampled from the prefill's logits).</summary>
    public required int DecodeSteps { get; init; }

    /// <summary>Prompt tokens per second of prefill.</summary>
    public double PrefillTokensPerSecond => PrefillTime > TimeSpan.Zero ? PromptIds.Length / PrefillTime.TotalSeconds : 0;

    /// <summary>One-token steps per second after the prefill.</summary>
    public double DecodeTokensPerSecond => DecodeTime > TimeSpan.Zero ? DecodeSteps / DecodeTime.TotalSeconds : 0;
}

/// <summary>The prompt leaves no position for a generated token in the context.</summary>
public sealed class PromptTooLongException(int promptTokens, int contextLength)
    : Exception($"the prompt is {promptTokens} tokens long; with one generated token that exceeds the context of {contextLength} positions (raise --ctx-size or shorten the prompt)")
{
    public int PromptTokens { get; } = promptTokens;
    public int ContextLength { get; } = contextLength;
}
