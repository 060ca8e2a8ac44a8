using Engine.Runtime.Sampling;

namespace Engine.Runtime.Generation;

/// <summary>What one generation produces and when it stops.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate (llama.cpp's n_predict); -1 means until the context is full.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>How each token is chosen.</summary>
    public SamplingOptions Sampling { get; init; } = new();

    /// <summary>Generation stops when the text contains one of these; the text ends just before it. Needs a tokenizer.</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];

    /// <summary>Stop at an end-of-generation token (EOS, EOT: <see cref="Llama.LlamaModel.EndOfGenerationIds"/>). llama.cpp's --ignore-eos turns it off.</summary>
    public bool StopAtEndOfGeneration { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        if (MaxTokens is 0 or < -1) throw new ArgumentException($"max tokens must be positive (or -1 for no limit), found {MaxTokens}");
        ArgumentNullException.ThrowIfNull(Sampling);
        Sampling.Validate();
        foreach (var s in StopSequences)
            if (string.IsNullOrEmpty(s)) throw new ArgumentException("a stop sequence is empty");
    }
}
