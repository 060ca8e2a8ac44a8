using System.Text.Json;
using Engine.Control.Experiments;
using Engine.Control.Feedback;

namespace Engine.Control;

/// <summary>The cluster's counters as `engine stats` prints them.</summary>
/// <param name="EventsPersisted">Events made durable by sessions (as flushed by the pre-aggregators,
/// so up to one flush interval behind).</param>
/// <param name="Experiments">Each experiment's report.</param>
public sealed record ClusterStats(long EventsPersisted, IReadOnlyList<ExperimentReport> Experiments);

/// <summary>Reads <see cref="ClusterStats"/> from the grains and writes them as JSON.</summary>
public static class ControlStats
{
    /// <summary>Reads the counters and every experiment's report.</summary>
    public static async Task<ClusterStats> ReadAsync(IGrainFactory grains)
    {
        var persisted = await grains.GetGrain<IClusterCountersGrain>(0).GetEventsPersisted();
        var snapshot = await grains.GetGrain<IExperimentRegistryGrain>(0).GetSnapshot();
        var reports = await Task.WhenAll(snapshot.Experiments.Keys.Order(StringComparer.Ordinal)
            .Select(id => grains.GetGrain<IExperimentGrain>(id).GetReport()));
        return new ClusterStats(persisted, reports);
    }

    /// <summary>The JSON `engine stats` prints: a top-level <c>eventsPersisted</c>, then per
    /// experiment its status, SRM check and per-arm (and model version) counts, rates with 95%
    /// intervals and rewards.</summary>
    public static string ToJson(ClusterStats stats, bool indented = true)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented }))
        {
            w.WriteStartObject();
            w.WriteNumber("eventsPersisted", stats.EventsPersisted);
            w.WriteStartArray("experiments");
            foreach (var e in stats.Experiments)
            {
                w.WriteStartObject();
                w.WriteString("id", e.Config.Id);
                w.WriteString("status", e.Config.Status.ToString());
                w.WriteNumber("configVersion", e.Config.Version);
                w.WriteStartObject("srm");
                w.WriteBoolean("checked", e.Srm.Checked);
                w.WriteBoolean("mismatch", e.Srm.Mismatch);
                w.WriteNumber("chiSquare", e.Srm.ChiSquare);
                w.WriteNumber("critical", e.Srm.Critical);
                w.WriteEndObject();
                w.WriteStartArray("arms");
                foreach (var a in e.Arms) WriteArm(w, a);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteArm(Utf8JsonWriter w, ArmReport a)
    {
        var c = a.Counters;
        w.WriteStartObject();
        w.WriteString("arm", a.Key.Arm);
        w.WriteString("modelVersion", a.Key.ModelVersion);
        w.WriteNumber("assignments", c.Assignments);
        w.WriteNumber("exposures", c.Exposures);
        w.WriteNumber("clicks", c.Clicks);
        w.WriteNumber("carts", c.Carts);
        w.WriteNumber("purchases", c.Purchases);
        w.WriteNumber("returns", c.Returns);
        w.WriteNumber("rewardSum", c.RewardSum);
        WriteRate(w, "clickRate", a.ClickRate);
        WriteRate(w, "cartRate", a.CartRate);
        WriteRate(w, "purchaseRate", a.PurchaseRate);
        WriteRate(w, "returnRate", a.ReturnRate);
        WriteRate(w, "rewardPerExposure", a.RewardPerExposure);
        w.WriteEndObject();
    }

    private static void WriteRate(Utf8JsonWriter w, string name, Rate r)
    {
        w.WriteStartObject(name);
        w.WriteNumber("value", r.Value);
        w.WriteNumber("low", r.Low);
        w.WriteNumber("high", r.High);
        w.WriteEndObject();
    }
}
