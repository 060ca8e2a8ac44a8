using System.Net.Sockets;
using System.Text.Json;
using Engine.Cli.Commands;
using Engine.Cli.Hosting;
using Engine.Client;
using Engine.Control.Catalog;
using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Engine.Protocol.Messages;
using ProtocolKind = Engine.Protocol.Messages.EventKind;

namespace Engine.Server.Tests;

/// <summary>Per-arm figures over the wire: StatsResult.Experiments as `engine serve` fills it and
/// `engine stats` prints it.</summary>
public class ServeStatsTests
{
    [Fact]
    public async Task Stats_carry_each_experiment_arm_with_counts_rewards_and_rate_intervals()
    {
        await using var host = await ServeHost.StartAsync(
            new ServerOptions { Port = 0 },
            (events, stats) => new ServerHandlers { Events = events, StatsSources = [stats] },
            new ControlHostingOptions { SiloPort = FreePort(), GatewayPort = FreePort(), ClusterId = "stats-test", ServiceId = "stats-test" },
            o => o.FeedbackFlushInterval = TimeSpan.FromMilliseconds(100),
            logging: _ => { });
        await host.Grains.GetGrain<IProductGrain>("p1").Upsert(new ProductUpdate("p1", "test", new Dictionary<string, string>(), 1m, 5, 0f, [1f, 0f]));
        await host.Grains.GetGrain<IExperimentGrain>("exp1").Configure(new ExperimentConfig("exp1", "salt", "ranking", 0, 10_000, 0,
            [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("treatment", 5000)]));
        var arm = new ArmKey("exp1", "treatment", "m1");
        foreach (var (customer, rec) in new[] { ("alice", "r1"), ("bob", "r2") })
            await host.ControlEvents.RecordExposureAsync(new Exposure(rec, customer, arm, "ctx", [new ExposedAction("p1", 0.5f)], DateTimeOffset.UtcNow));
        await using var client = await EngineClient.ConnectAsync(new EngineClientOptions { Port = host.EndPoint.Port });
        long t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.Equal(2, await client.SendEventsAsync([
            new ShopperEvent { CustomerId = "alice", Kind = (byte)ProtocolKind.Click, ProductId = "p1", RecommendationId = "r1", TimeUnixMs = t0 },
            new ShopperEvent { CustomerId = "alice", Kind = (byte)ProtocolKind.Purchase, ProductId = "p1", RecommendationId = "r1", TimeUnixMs = t0 + 1 },
        ]));

        // Feedback reaches the stats grains through the pre-aggregators (100 ms here), then the
        // server's background read (500 ms).
        StatsResult stats = new();
        ArmStat? treatment = null;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30); // a ceiling for a loaded machine, not a timing assert
        while (DateTime.UtcNow < until)
        {
            stats = await client.StatsAsync();
            treatment = stats.Experiments.FirstOrDefault(e => e.Id == "exp1")?.Arms.FirstOrDefault(a => a.Arm == "treatment");
            if (treatment is { Exposures: 2, Clicks: 1, Purchases: 1 }) break;
            await Task.Delay(50);
        }
        Assert.NotNull(treatment);
        var experiment = Assert.Single(stats.Experiments, e => e.Id == "exp1");
        Assert.Equal("Running", experiment.Status);
        Assert.Equal("m1", treatment.ModelVersion);
        Assert.Equal((2, 2, 1, 1, 0), (treatment.Assignments, treatment.Exposures, treatment.Clicks, treatment.Purchases, treatment.Returns));
        Assert.True(treatment.RewardSum > 0, $"reward sum {treatment.RewardSum}");
        Assert.Equal(0.5, treatment.ClickRate.Value, 1e-12);
        Assert.InRange(treatment.ClickRate.Low, 0.0, 0.5);
        Assert.InRange(treatment.ClickRate.High, 0.5, 1.0);

        // `engine stats` prints them beside eventsPersisted.
        var json = JsonDocument.Parse(StatsCommand.ToJson(stats)).RootElement;
        var printed = json.GetProperty("experiments").EnumerateArray().Single(e => e.GetProperty("id").GetString() == "exp1")
            .GetProperty("arms").EnumerateArray().Single(a => a.GetProperty("arm").GetString() == "treatment");
        Assert.Equal(1, printed.GetProperty("purchases").GetInt64());
        Assert.Equal(treatment.ClickRate.High, printed.GetProperty("clickRate").GetProperty("high").GetDouble());

        // A prefix that excludes them leaves them out; "control." keeps them.
        Assert.Empty((await client.StatsAsync("server.")).Experiments);
        Assert.NotEmpty((await client.StatsAsync("control.")).Experiments);
    }

    private static int FreePort() => Engine.Tests.Shared.TestPorts.Free();
}
