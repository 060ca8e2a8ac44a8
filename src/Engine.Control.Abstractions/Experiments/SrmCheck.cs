namespace Engine.Control.Experiments;

/// <summary>Result of a sample-ratio-mismatch check.</summary>
/// <param name="Checked">False when too few customers were assigned to judge.</param>
/// <param name="ChiSquare">Pearson's statistic of observed against expected assignment counts.</param>
/// <param name="DegreesOfFreedom">Served arms − 1.</param>
/// <param name="Critical">The statistic's value at p = 0.001 for these degrees of freedom.</param>
/// <param name="Mismatch">ChiSquare above Critical: the split is broken (assignment or logging bug).</param>
[GenerateSerializer, Immutable]
public sealed record SrmResult(
    [property: Id(0)] bool Checked,
    [property: Id(1)] double ChiSquare,
    [property: Id(2)] int DegreesOfFreedom,
    [property: Id(3)] double Critical,
    [property: Id(4)] bool Mismatch);

/// <summary>Sample-ratio-mismatch check: Pearson's chi-square goodness of fit at p &lt; 0.001, the
/// usual threshold for SRM alarms (Fabijan et al., "Diagnosing Sample Ratio Mismatch", KDD 2019).</summary>
public static class SrmCheck
{
    /// <summary>Largest number of arms the critical-value table covers.</summary>
    public const int MaxArms = 16;

    /// <summary>Fewer assignments than this are not judged: the chi-square approximation needs
    /// expected counts of at least 5 per arm, and small samples alarm on noise.</summary>
    public const long MinimumSample = 100;

    // Upper 0.1% points of the chi-square distribution for 1..15 degrees of freedom (NIST/SEMATECH
    // e-Handbook of Statistical Methods, table 1.3.6.7.4).
    private static readonly double[] Critical001 =
        [10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264, 32.909, 34.528, 36.123, 37.697];

    /// <summary>Checks observed counts against the expected weights (same order, any positive scale).</summary>
    public static SrmResult Check(IReadOnlyList<long> observed, IReadOnlyList<int> weights)
    {
        if (observed.Count != weights.Count || observed.Count < 2 || observed.Count > MaxArms)
            throw new ArgumentException($"SRM check needs 2..{MaxArms} arms with one weight each");
        var df = observed.Count - 1;
        var critical = Critical001[df - 1];
        var total = observed.Sum();
        if (total < MinimumSample) return new SrmResult(false, 0, df, critical, false);
        double weightSum = weights.Sum();
        double chi = 0;
        for (var i = 0; i < observed.Count; i++)
        {
            var expected = total * weights[i] / weightSum;
            var d = observed[i] - expected;
            chi += d * d / expected;
        }
        return new SrmResult(true, chi, df, critical, chi > critical);
    }
}
