namespace Engine.Runtime.Ranking;

/// <summary>A logistic model p = σ(bias + Σ weights[i]·x[i]) over <see cref="RankingFeatures"/>.</summary>
public sealed class LogisticHead
{
    /// <summary>Creates a head; <paramref name="weights"/> has one entry per feature, all finite.</summary>
    public LogisticHead(float bias, IReadOnlyList<float> weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (!float.IsFinite(bias) || weights.Any(w => !float.IsFinite(w)))
            throw new ArgumentException("logistic head weights must be finite", nameof(weights));
        Bias = bias;
        _weights = weights.ToArray();
    }

    private readonly float[] _weights; // [features] f32

    public float Bias { get; }

    /// <summary>One weight per feature, in <see cref="RankingFeatures"/> order.</summary>
    public IReadOnlyList<float> Weights => _weights;

    /// <summary>The logit bias + w·x.</summary>
    public float Logit(ReadOnlySpan<float> x)
    {
        float z = Bias;
        var w = _weights;
        int n = Math.Min(w.Length, x.Length);
        for (int i = 0; i < n; i++) z += w[i] * x[i];
        return z;
    }

    /// <summary>σ(logit), in (0, 1).</summary>
    public float Predict(ReadOnlySpan<float> x) => Sigmoid(Logit(x));

    internal static float Sigmoid(float z) => 1f / (1f + MathF.Exp(-z));
}
