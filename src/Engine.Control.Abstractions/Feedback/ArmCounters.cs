namespace Engine.Control.Feedback;

/// <summary>Raw counts of one arm (or one shard of it); shards add up.</summary>
[GenerateSerializer, Immutable]
public sealed record ArmCounters(
    [property: Id(0)] long Assignments,
    [property: Id(1)] long Exposures,
    [property: Id(2)] long Clicks,
    [property: Id(3)] long Carts,
    [property: Id(4)] long Purchases,
    [property: Id(5)] long Returns,
    [property: Id(6)] double RewardSum,
    [property: Id(7)] double RewardSquares)
{
    /// <summary>All zero.</summary>
    public static readonly ArmCounters Zero = new(0, 0, 0, 0, 0, 0, 0, 0);

    /// <summary>Sum of two shards.</summary>
    public ArmCounters Add(ArmCounters o) => new(
        Assignments + o.Assignments, Exposures + o.Exposures, Clicks + o.Clicks, Carts + o.Carts,
        Purchases + o.Purchases, Returns + o.Returns, RewardSum + o.RewardSum, RewardSquares + o.RewardSquares);
}

/// <summary>A rate with its 95% confidence interval.</summary>
[GenerateSerializer, Immutable]
public sealed record Rate([property: Id(0)] double Value, [property: Id(1)] double Low, [property: Id(2)] double High)
{
    /// <summary>z for a two-sided 95% interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>Wilson score interval of <paramref name="successes"/> out of <paramref name="trials"/>
    /// (Wilson 1927; stays inside [0, 1] and behaves at small counts, unlike the normal interval).</summary>
    public static Rate Wilson(long successes, long trials, double z = Z95)
    {
        if (trials <= 0) return new Rate(0, 0, 1);
        var n = (double)trials;
        var p = Math.Clamp(successes / n, 0, 1);
        var z2 = z * z;
        var center = (p + z2 / (2 * n)) / (1 + z2 / n);
        var half = z * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
        return new Rate(p, Math.Max(0, center - half), Math.Min(1, center + half));
    }

    /// <summary>Mean with a normal-approximation interval from a sum and a sum of squares over n.</summary>
    public static Rate Mean(double sum, double squares, long n, double z = Z95)
    {
        if (n <= 0) return new Rate(0, 0, 0);
        var mean = sum / n;
        var variance = n > 1 ? Math.Max(0, (squares - n * mean * mean) / (n - 1)) : 0;
        var half = z * Math.Sqrt(variance / n);
        return new Rate(mean, mean - half, mean + half);
    }
}

/// <summary>An arm's figures: counts, then rates per exposure (returns per purchase) with 95%
/// Wilson intervals, and the mean reward per exposure.</summary>
[GenerateSerializer, Immutable]
public sealed record ArmReport(
    [property: Id(0)] ArmKey Key,
    [property: Id(1)] ArmCounters Counters,
    [property: Id(2)] Rate ClickRate,
    [property: Id(3)] Rate CartRate,
    [property: Id(4)] Rate PurchaseRate,
    [property: Id(5)] Rate ReturnRate,
    [property: Id(6)] Rate RewardPerExposure)
{
    /// <summary>Computes the rates from counts.</summary>
    public static ArmReport From(ArmKey key, ArmCounters c) => new(
        key, c,
        Rate.Wilson(c.Clicks, c.Exposures),
        Rate.Wilson(c.Carts, c.Exposures),
        Rate.Wilson(c.Purchases, c.Exposures),
        Rate.Wilson(c.Returns, c.Purchases),
        Rate.Mean(c.RewardSum, c.RewardSquares, c.Exposures));
}
