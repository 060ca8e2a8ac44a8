using System.Text.Json;
using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Control.Sessions;

namespace Engine.Control.Tests;

[Collection(ClusterCollection.Name)]
public class ControlStatsTests(ClusterFixture fixture)
{
    [Fact]
    public async Task Stats_json_has_events_persisted_and_per_arm_figures()
    {
        var client = fixture.Client;
        var id = TestData.Id("exp");
        await client.GetGrain<IExperimentGrain>(id).Configure(TestData.Experiment(id, layer: TestData.Id("layer")));
        var customer = TestData.Id("c");
        var session = client.GetGrain<ICustomerSessionGrain>(customer);
        await session.RecordExposure(new Exposure("r1", customer, new ArmKey(id, "treatment", "m1"), "ctx", [], DateTimeOffset.UtcNow));
        await session.Record(TestData.Event(customer, EventKind.SearchNoResults, null));
        await client.GetGrain<IFeedbackAggregatorGrain>(0).Flush();

        JsonElement experiment = default;
        JsonDocument doc = null!;
        for (var i = 0; i < 100; i++)
        {
            doc = JsonDocument.Parse(ControlStats.ToJson(await ControlStats.ReadAsync(client)));
            experiment = doc.RootElement.GetProperty("experiments").EnumerateArray().FirstOrDefault(e => e.GetProperty("id").GetString() == id);
            if (experiment.ValueKind == JsonValueKind.Object && experiment.GetProperty("arms").GetArrayLength() > 0 &&
                doc.RootElement.GetProperty("eventsPersisted").GetInt64() > 0) break;
            await Task.Delay(50);
        }
        Assert.True(doc.RootElement.GetProperty("eventsPersisted").GetInt64() >= 1);
        var arm = Assert.Single(experiment.GetProperty("arms").EnumerateArray());
        Assert.Equal("treatment", arm.GetProperty("arm").GetString());
        Assert.Equal(1, arm.GetProperty("exposures").GetInt64());
        Assert.Equal("Running", experiment.GetProperty("status").GetString());
        Assert.True(arm.GetProperty("clickRate").GetProperty("high").GetDouble() > 0);
    }
}
