namespace Engine.Cli.Bench;

/// <summary>
/// One engine under the decode benchmark: prefills a prompt, then decodes greedily one token at a
/// time. Implementations hold their model, context and buffers for the whole benchmark, so a round
/// measures steady-state decoding, not loading.
/// </summary>
internal interface IDecodeRunner : IDisposable
{
    /// <summary>Name shown in the table and used in the last line (<c>engine</c>, <c>llama.cpp</c>).</summary>
    string Name { get; }

    /// <summary>A short description of how it runs (backend, native build), for the table.</summary>
    string Detail { get; }

    /// <summary>
    /// Resets the sequence, evaluates <paramref name="prompt"/> in one batch, then runs
    /// <paramref name="tokens"/> single-token decode steps, each feeding the arg-max of the previous
    /// logits. Only the decode steps are timed.
    /// </summary>
    DecodeRound Run(ReadOnlySpan<int> prompt, int tokens);
}

/// <summary>Timings of one round: prefill of the prompt, and <see cref="Tokens"/> decode steps.</summary>
/// <param name="PrefillSeconds">Wall time of the prompt batch.</param>
/// <param name="DecodeSeconds">Wall time of the decode steps (forward pass plus arg-max each).</param>
/// <param name="Tokens">Decode steps timed.</param>
/// <param name="LastToken">The last token chosen (kept so no work can be optimised away).</param>
/// <param name="DecodeCpuSeconds">CPU time of the calling thread during the decode steps (<see cref="ThreadCpuClock"/>; NaN where unsupported).</param>
internal readonly record struct DecodeRound(double PrefillSeconds, double DecodeSeconds, int Tokens, int LastToken, double DecodeCpuSeconds)
{
    /// <summary>Decode tokens per second of the calling thread's CPU time (meaningful with one thread).</summary>
    public double TokensPerCpuSecond => Tokens / DecodeCpuSeconds;

    /// <summary>Decode tokens per second, prefill excluded.</summary>
    public double TokensPerSecond => Tokens / DecodeSeconds;
}
