namespace Engine.Runtime.Sampling;

/// <summary>
/// How the next token is chosen from the logits. Defaults are llama.cpp's (common/common.h,
/// <c>common_params_sampling</c>). The steps run in llama.cpp's default order: logit bias →
/// repetition penalties → top-k → top-p → min-p → temperature → draw. With
/// <see cref="Temperature"/> ≤ 0 the draw is greedy (the first token of maximal logit after
/// bias and penalties), as llama.cpp's greedy sampler.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Greedy decoding: temperature 0, no penalties.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Logits are divided by it before the draw; ≤ 0 means greedy. llama.cpp default 0.8.</summary>
    public float Temperature { get; init; } = 0.8f;

    /// <summary>Keep the k most likely tokens; ≤ 0 disables. llama.cpp default 40.</summary>
    public int TopK { get; init; } = 40;

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches p; ≥ 1 disables. llama.cpp default 0.95.</summary>
    public float TopP { get; init; } = 0.95f;

    /// <summary>Drop tokens whose probability is below <c>MinP × p_max</c>; ≤ 0 disables. llama.cpp default 0.05.</summary>
    public float MinP { get; init; } = 0.05f;

    /// <summary>
    /// Repetition penalty over the last <see cref="RepeatLastN"/> tokens (prompt included): a positive
    /// logit is divided by it, a negative one multiplied (llama.cpp's <c>penalty_repeat</c>); 1 disables.
    /// </summary>
    public float RepeatPenalty { get; init; } = 1.0f;

    /// <summary>Window of the penalties, in tokens; 0 disables them, -1 means the whole context. llama.cpp default 64.</summary>
    public int RepeatLastN { get; init; } = 64;

    /// <summary>Subtracted once per occurrence in the window (llama.cpp's <c>penalty_freq</c>); 0 disables.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Subtracted once when the token occurs in the window (llama.cpp's <c>penalty_present</c>); 0 disables.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>Added to a token's logit before anything else; <see cref="float.NegativeInfinity"/> bans the token.</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    /// <summary>Seed of the draw: the same seed, options and model give the same tokens. Null picks a random seed (see <see cref="Sampler.Seed"/>).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        if (float.IsNaN(Temperature)) throw new ArgumentException("temperature must be a number");
        if (float.IsNaN(TopP) || TopP <= 0) throw new ArgumentException($"top-p must be in (0, 1], found {TopP}");
        if (float.IsNaN(MinP) || MinP > 1) throw new ArgumentException($"min-p must be in [0, 1], found {MinP}");
        if (float.IsNaN(RepeatPenalty) || RepeatPenalty <= 0) throw new ArgumentException($"repeat penalty must be positive, found {RepeatPenalty}");
        if (RepeatLastN < -1) throw new ArgumentException($"repeat-last-n must be -1, 0 or positive, found {RepeatLastN}");
        if (float.IsNaN(FrequencyPenalty) || float.IsNaN(PresencePenalty)) throw new ArgumentException("penalties must be numbers");
        if (LogitBias is not null)
            foreach (var (id, bias) in LogitBias)
                if (float.IsNaN(bias)) throw new ArgumentException($"logit bias of token {id} is NaN");
    }
}
