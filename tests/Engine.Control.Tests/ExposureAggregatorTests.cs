using Engine.Control.Catalog;
using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Control.Sessions;

namespace Engine.Control.Tests;

/// <summary>The batched exposure path (<see cref="IExposureAggregatorGrain"/>, one call per batch of served lists):
/// exposures reach the stats shards' counters and decision log, their sessions keep them for reward attribution.</summary>
[Collection(ClusterCollection.Name)]
public class ExposureAggregatorTests(ClusterFixture fixture)
{
    private readonly IClusterClient _client = fixture.Client;

    [Fact]
    public async Task A_batch_of_several_customers_reaches_the_stats_shards_and_decision_log_and_later_clicks_reward_it()
    {
        var id = TestData.Id("exp");
        await _client.GetGrain<IExperimentGrain>(id).Configure(TestData.Experiment(id, layer: TestData.Id("layer"), shadow: true));
        var product = TestData.Id("p");
        await _client.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Bag", [1, 0]));
        var (alice, bob) = (TestData.Id("c"), TestData.Id("c"));
        var treatment = new ArmKey(id, "treatment", "m1");
        var control = new ArmKey(id, "control", "m1");
        Exposure Make(string rec, string customer, ArmKey arm, bool shadow = false) =>
            new(rec, customer, arm, $"{{\"rec\":\"{rec}\"}}", [new ExposedAction(product, 1f)], DateTimeOffset.UtcNow, shadow);

        var logged = await _client.GetGrain<IExposureAggregatorGrain>(0).Record([
            Make("a1", alice, treatment),
            Make("b1", bob, control),
            Make("a2", alice, treatment),
            Make("a1~shadow", alice, new ArmKey(id, "shadow", "m1"), shadow: true),
            Make("a1", alice, treatment),                 // a repeated id: reaches the session, logged once
            Make("x1", "", treatment),                   // anonymous: no session, not counted
        ]);
        Assert.Equal(5, logged);

        // Alice clicks the product of a1 (rewarded) and of a1~shadow (a shadow list is never rewarded).
        await _client.GetGrain<ICustomerSessionGrain>(alice).RecordBatch([
            TestData.Event(alice, EventKind.Click, product, rec: "a1"),
            TestData.Event(alice, EventKind.Click, product, rec: "a1~shadow"),
        ]);

        ExperimentReport report = null!;
        for (var i = 0; i < 100; i++)
        {
            await _client.GetGrain<IFeedbackAggregatorGrain>(0).Flush();
            report = await _client.GetGrain<IExperimentGrain>(id).GetReport();
            if (report.Arms.Sum(a => a.Counters.Exposures) == 4 && report.Arms.Sum(a => a.Counters.Clicks) == 1) break;
            await Task.Delay(50);
        }
        ArmCounters Of(string arm) => report.Arms.Single(a => a.Key.Arm == arm).Counters;
        Assert.Equal((1L, 2L, 1L), (Of("treatment").Assignments, Of("treatment").Exposures, Of("treatment").Clicks)); // alice once, a1 + a2
        Assert.Equal((1L, 1L, 0L), (Of("control").Assignments, Of("control").Exposures, Of("control").Clicks));
        Assert.Equal((0L, 1L, 0L), (Of("shadow").Assignments, Of("shadow").Exposures, Of("shadow").Clicks));

        var decisions = await _client.GetGrain<IExperimentGrain>(id).ExportDecisions(null, 100);
        Assert.Equal(["a1", "a1~shadow", "a2", "b1"], decisions.Select(d => d.RecommendationId).Order());
        Assert.All(decisions, d => Assert.Equal($"{{\"rec\":\"{d.RecommendationId}\"}}", d.Context));
        Assert.Equal(1, decisions.Single(d => d.RecommendationId == "a1").Actions[0].Clicks);
        Assert.True(decisions.Single(d => d.RecommendationId == "a1~shadow").Shadow);
    }

    [Fact]
    public async Task A_session_refuses_a_batch_naming_another_customer_and_applies_none_of_it()
    {
        var id = TestData.Id("exp");
        await _client.GetGrain<IExperimentGrain>(id).Configure(TestData.Experiment(id, layer: TestData.Id("layer")));
        var (alice, bob) = (TestData.Id("c"), TestData.Id("c"));
        var arm = new ArmKey(id, "treatment", "m1");
        var session = _client.GetGrain<ICustomerSessionGrain>(alice);
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => session.RecordExposures([
            new Exposure("ok", alice, arm, "{}", [], DateTimeOffset.UtcNow),
            new Exposure("bad", bob, arm, "{}", [], DateTimeOffset.UtcNow),
        ]));
        Assert.Contains(bob, ex.Message);

        await session.RecordExposures([new Exposure("later", alice, arm, "{}", [], DateTimeOffset.UtcNow)]);
        ExperimentReport report = null!;
        for (var i = 0; i < 100; i++)
        {
            await _client.GetGrain<IFeedbackAggregatorGrain>(0).Flush();
            report = await _client.GetGrain<IExperimentGrain>(id).GetReport();
            if (report.Arms.Sum(a => a.Counters.Exposures) > 0) break;
            await Task.Delay(50);
        }
        // Only "later" was logged, and it is alice's first exposure to the experiment (the refused batch added none).
        var counters = report.Arms.Single(a => a.Key == arm).Counters;
        Assert.Equal((1L, 1L), (counters.Assignments, counters.Exposures));
    }
}
