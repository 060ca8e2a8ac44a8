using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Protocol.Messages;

namespace Engine.Cli.Hosting;

/// <summary>The control plane's experiment reports as the wire's <see cref="ExperimentStat"/>
/// (docs/PROTOCOL.md, StatsResult member 1): the same figures `ControlStats.ToJson` prints.</summary>
public static class ExperimentStatMapping
{
    /// <summary>One experiment, its SRM check and every (arm, model version).</summary>
    public static ExperimentStat ToWire(ExperimentReport report) => new()
    {
        Id = report.Config.Id,
        Status = report.Config.Status.ToString(),
        ConfigVersion = report.Config.Version,
        SrmChecked = report.Srm.Checked,
        SrmMismatch = report.Srm.Mismatch,
        SrmChiSquare = report.Srm.ChiSquare,
        SrmCritical = report.Srm.Critical,
        Arms = [.. report.Arms.Select(ToWire)],
    };

    private static ArmStat ToWire(ArmReport a) => new()
    {
        Arm = a.Key.Arm,
        ModelVersion = a.Key.ModelVersion,
        Assignments = a.Counters.Assignments,
        Exposures = a.Counters.Exposures,
        Clicks = a.Counters.Clicks,
        Carts = a.Counters.Carts,
        Purchases = a.Counters.Purchases,
        Returns = a.Counters.Returns,
        RewardSum = a.Counters.RewardSum,
        ClickRate = ToWire(a.ClickRate),
        CartRate = ToWire(a.CartRate),
        PurchaseRate = ToWire(a.PurchaseRate),
        ReturnRate = ToWire(a.ReturnRate),
        RewardPerExposure = ToWire(a.RewardPerExposure),
    };

    private static RateStat ToWire(Rate r) => new() { Value = r.Value, Low = r.Low, High = r.High };
}
