using Engine.Control.Catalog;
using Engine.Control.Experiments;
using Engine.Control.Sessions;

namespace Engine.Control.Tests;

internal static class TestData
{
    /// <summary>A fresh id so tests sharing one cluster never share grains.</summary>
    public static string Id(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    public static ExperimentConfig Experiment(string id, string layer = "ranking", int start = 0, int end = 10_000, int holdout = 0, bool shadow = false) =>
        new(id, "salt-" + id, layer, start, end, holdout,
            shadow
                ? [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("treatment", 5000), new ArmConfig("shadow", 0, IsShadow: true)]
                : [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("treatment", 5000)]);

    public static ProductUpdate Product(string title, float[] embedding, params (string Key, string Value)[] attributes) =>
        new(title, "apparel/shirts", attributes.ToDictionary(a => a.Key, a => a.Value), 19.99m, 10, 0.05f, embedding);

    public static CustomerEvent Event(string customer, EventKind kind, string? product, DateTimeOffset? at = null, string? rec = null, int quantity = 1) =>
        new(Guid.NewGuid(), customer, kind, product, at ?? DateTimeOffset.UtcNow, rec, Quantity: quantity);
}
