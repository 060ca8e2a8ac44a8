using Engine.Control.Catalog;
using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Control.Sessions;

namespace Engine.Control.Tests;

/// <summary>The stats grains' decision log: one entry per recommendation, rewards joined per product and per kind,
/// exported through the experiment grain (docs/FEEDBACK-LOG.md).</summary>
[Collection(ClusterCollection.Name)]
public class DecisionLogTests(ClusterFixture fixture)
{
    private readonly IClusterClient _client = fixture.Client;

    private async Task<LoggedDecision> WaitForDecision(string experiment, string rec, Func<LoggedDecision, bool> done)
    {
        LoggedDecision? found = null;
        for (var i = 0; i < 100; i++)
        {
            await _client.GetGrain<IFeedbackAggregatorGrain>(0).Flush();
            found = (await _client.GetGrain<IExperimentGrain>(experiment).ExportDecisions(null, 100_000)).FirstOrDefault(d => d.RecommendationId == rec);
            if (found is not null && done(found)) return found;
            await Task.Delay(50);
        }
        Assert.Fail($"decision {rec} never reached the wanted state; last: {found}");
        return null!;
    }

    [Fact]
    public async Task Rewards_are_joined_to_the_shown_product_by_kind_and_traffic_outside_experiments_exports_without_a_config()
    {
        var products = new[] { TestData.Id("p"), TestData.Id("p"), TestData.Id("p") };
        foreach (var p in products) await _client.GetGrain<IProductGrain>(p).Upsert(TestData.Product("Bag", [1, 0]));
        var customer = TestData.Id("c");
        var model = TestData.Id("m");
        var rec = TestData.Id("rec");
        var served = DateTimeOffset.UtcNow.AddMinutes(-1);
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        await session.RecordExposure(new Exposure(rec, customer, ArmKey.Unassigned(model), "{\"v\":1}",
            [.. products.Select(p => new ExposedAction(p, 1f))], served));
        await session.RecordBatch([
            TestData.Event(customer, EventKind.Click, products[1], rec: rec),
            TestData.Event(customer, EventKind.AddToCart, products[1], rec: rec),
            TestData.Event(customer, EventKind.Purchase, products[1], rec: rec),
            TestData.Event(customer, EventKind.Click, products[2], rec: rec),
            TestData.Event(customer, EventKind.Click, products[2], rec: rec),
            TestData.Event(customer, EventKind.View, products[0], rec: rec), // not a reward
        ]);

        var d = await WaitForDecision(ArmKey.NoExperiment, rec, x => x.Actions.Sum(a => a.Clicks) == 3);
        Assert.Equal((ArmKey.Unassigned(model), "{\"v\":1}", false), (d.Arm, d.Context, d.Shadow));
        Assert.Equal(served.ToUnixTimeMilliseconds(), d.ServedAt.ToUnixTimeMilliseconds());
        Assert.NotNull(d.UpdatedAt);
        Assert.Equal([1, 2, 3], d.Actions.Select(a => a.Position));
        Assert.Equal(products, d.Actions.Select(a => a.ProductId));
        Assert.Equal((0, 0, 0, 0, 0.0), (d.Actions[0].Clicks, d.Actions[0].Carts, d.Actions[0].Purchases, d.Actions[0].Returns, d.Actions[0].Reward));
        Assert.Equal((1, 1, 1, 0), (d.Actions[1].Clicks, d.Actions[1].Carts, d.Actions[1].Purchases, d.Actions[1].Returns));
        Assert.Equal(0.1 + 0.3 + 1.0, d.Actions[1].Reward, 9);
        Assert.Equal((2, 0.2), (d.Actions[2].Clicks, Math.Round(d.Actions[2].Reward, 9)));

        await Assert.ThrowsAsync<UnknownEntityException>(() => _client.GetGrain<IExperimentGrain>(ArmKey.NoExperiment).ExportDecisions("treatment", 10));
    }

    [Fact]
    public async Task Shadow_decisions_are_exported_flagged_and_an_arm_filter_keeps_only_that_arm()
    {
        var id = TestData.Id("exp");
        await _client.GetGrain<IExperimentGrain>(id).Configure(TestData.Experiment(id, layer: TestData.Id("layer"), shadow: true));
        var product = TestData.Id("p");
        await _client.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Bag", [1, 0]));
        var customer = TestData.Id("c");
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        await session.RecordExposure(new Exposure("r", customer, new ArmKey(id, "treatment", "m1"), "{}", [new ExposedAction(product, 1f)], DateTimeOffset.UtcNow));
        await session.RecordExposure(new Exposure("r~shadow", customer, new ArmKey(id, "shadow", "m1"), "{}", [new ExposedAction(product, 1f)], DateTimeOffset.UtcNow, Shadow: true));

        var shadow = await WaitForDecision(id, "r~shadow", _ => true);
        Assert.True(shadow.Shadow);
        await WaitForDecision(id, "r", _ => true);
        var treatment = await _client.GetGrain<IExperimentGrain>(id).ExportDecisions("treatment", 100);
        Assert.Equal(["r"], treatment.Select(x => x.RecommendationId));
        Assert.Single(await _client.GetGrain<IExperimentGrain>(id).ExportDecisions(null, 1)); // the latest only
        await Assert.ThrowsAsync<UnknownEntityException>(() => _client.GetGrain<IExperimentGrain>(id).ExportDecisions("no-such-arm", 10));
    }
}
