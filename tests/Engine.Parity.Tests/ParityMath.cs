namespace Engine.Parity.Tests;

/// <summary>Error measures of the parity tests.</summary>
internal static class ParityMath
{
    /// <summary>Normalized error <c>||actual - expected|| / ||expected||</c> (computed in double).</summary>
    public static double NormalizedError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length)
            throw new ArgumentException($"lengths differ: {actual.Length} vs {expected.Length}");
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(diff / norm);
    }

    /// <summary>Euclidean norm (in double).</summary>
    public static double Norm(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (float v in values) sum += (double)v * v;
        return Math.Sqrt(sum);
    }

    /// <summary>Gap between the largest and the second largest value: how far greedy is from a tie.</summary>
    public static float TopTwoMargin(ReadOnlySpan<float> values)
    {
        float first = float.NegativeInfinity, second = float.NegativeInfinity;
        foreach (float v in values)
        {
            if (v > first) { second = first; first = v; }
            else if (v > second) second = v;
        }
        return first - second;
    }
}
