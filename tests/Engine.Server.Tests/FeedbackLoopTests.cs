using System.Net.Sockets;
using System.Text.Json;
using Engine.Cli;
using Engine.Cli.Commands;
using Engine.Cli.Hosting;
using Engine.Client;
using Engine.Control.Catalog;
using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Engine.Cpu.Vectors;
using Engine.Protocol.Messages;
using Engine.Runtime.Ranking;
using Microsoft.Extensions.DependencyInjection;
using ProtocolKind = Engine.Protocol.Messages.EventKind;

namespace Engine.Server.Tests;

/// <summary>
/// The feedback loop of `engine serve` in process: a served Recommend is logged as an exposure (off the request
/// path), a later click naming its recommendation id rewards it, FeedbackExport returns it, and `engine train-heads`
/// turns the exported log into a heads file that a ranking pipeline serves with (docs/FEEDBACK-LOG.md).
/// </summary>
public sealed class FeedbackLoopTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static int FreePort() => Engine.Tests.Shared.TestPorts.Free();

    [Fact]
    public async Task A_served_recommend_is_logged_a_later_click_rewards_it_and_the_export_trains_heads_that_rank()
    {
        using var ranking = DemoRanking.Build(500, new HashingTextEmbedder(), new ReferenceVectorScanner());
        ExposureLogger? exposures = null;
        RankingRecommendHandler? recommend = null;
        string dir = Directory.CreateTempSubdirectory("feedback-loop-").FullName;
        var host = await ServeHost.StartAsync(
            new ServerOptions { Port = 0 },
            context =>
            {
                exposures = new ExposureLogger(context.Grains, context.Experiments, log: _ => { });
                recommend = new RankingRecommendHandler(ranking.Pipeline, new GrainShopperProfiles(context.Grains), ExperimentArms.From(context.Experiments)) { Exposures = exposures };
                return new ServerHandlers
                {
                    Recommend = recommend,
                    Events = context.Events,
                    FeedbackExport = new ControlFeedbackExport(context.Grains),
                    StatsSources = [context.ControlStats, recommend, exposures],
                };
            },
            new ControlHostingOptions { SiloPort = FreePort(), GatewayPort = FreePort(), ClusterId = "feedback-test", ServiceId = "feedback-test" },
            o => o.FeedbackFlushInterval = TimeSpan.FromMilliseconds(100),
            logging: _ => { },
            services: s => s.AddSingleton<IProductEmbeddings>(new IndexProductEmbeddings(ranking.Index)));
        try
        {
            await using var client = await EngineClient.ConnectAsync(new EngineClientOptions { Port = host.EndPoint.Port });
            var result = await client.RecommendAsync(new RecommendRequest { CustomerId = "alice", K = 5, Query = "summer dress" }).WaitAsync(Wait);
            Assert.Equal(5, result.Items.Length);
            await exposures!.DrainAsync().WaitAsync(Wait);
            Assert.Equal((1L, 0L, 0L), (exposures.Logged, exposures.Dropped, exposures.Failed));

            // The storefront reports a click on the second product, quoting the recommendation id.
            Assert.Equal(1, await client.SendEventsAsync([new ShopperEvent
            {
                CustomerId = "alice", Kind = (byte)ProtocolKind.Click, ProductId = result.Items[1].ProductId,
                RecommendationId = result.RecommendationId, TimeUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            }]).WaitAsync(Wait));

            FeedbackDecision? decision = null;
            var until = DateTime.UtcNow + Wait;
            while (DateTime.UtcNow < until)
            {
                await host.Grains.GetGrain<IFeedbackAggregatorGrain>(0).Flush();
                var page = await client.ExportFeedbackAsync(new FeedbackExportRequest()).WaitAsync(Wait);
                decision = page.Decisions.FirstOrDefault(d => d.RecommendationId == result.RecommendationId);
                if (decision?.Actions.Sum(a => a.Clicks) == 1) break;
                await Task.Delay(50);
            }
            Assert.NotNull(decision);
            Assert.Equal(("", result.ModelVersion, false), (decision.Arm, decision.ModelVersion, decision.Shadow));
            Assert.Equal(result.Items.Select(i => i.ProductId), decision.Actions.Select(a => a.ProductId));
            Assert.Equal([1, 2, 3, 4, 5], decision.Actions.Select(a => a.Position));
            Assert.All(decision.Actions, a => Assert.Equal(ExposureLogger.DeterministicPropensity, a.Probability));
            Assert.Equal([0, 1, 0, 0, 0], decision.Actions.Select(a => a.Clicks));
            Assert.True(decision.Actions[1].Reward > 0 && decision.UpdatedUnixMs >= decision.ServedUnixMs);
            using (var context = JsonDocument.Parse(decision.Context))
            {
                Assert.Equal(5, ExposureContext.ReadItems(context.RootElement).Length);
                Assert.Equal("summer dress", context.RootElement.GetProperty("request").GetProperty("query").GetString());
            }

            // export → file → train-heads → a heads file a pipeline ranks with.
            string log = Path.Combine(dir, "feedback.jsonl");
            await using (var w = new StreamWriter(log)) FeedbackLog.Write(w, [FeedbackCommand.ToLine("", decision)]);
            string heads = Path.Combine(dir, "heads.json");
            Assert.Equal(ExitCodes.Ok, Program.Main(["train-heads", "--log", log, "--out", heads, "--l2", "1", "--version", "trained-e2e"]));
            var trained = ScoringHeads.Load(heads);
            Assert.Equal("trained-e2e", trained.Version);
            Assert.NotEqual(ScoringHeads.Default.Click.Weights, trained.Click.Weights);      // fitted: 1 click in 5
            Assert.Equal(ScoringHeads.Default.AddToCart.Weights, trained.AddToCart.Weights); // no carts: kept
            using var retrained = new RankingPipeline(ranking.Pipeline.Products, ranking.Index, new HashingTextEmbedder(), trained, catalogVersion: "demo");
            var reranked = retrained.Rank(new RankRequest { QueryText = "summer dress", K = 5 });
            Assert.Equal(5, reranked.Items.Count);
            Assert.StartsWith("trained-e2e+", reranked.ModelVersion);
        }
        finally
        {
            await host.DisposeAsync();
            if (recommend is not null) await recommend.DisposeAsync();
            if (exposures is not null) await exposures.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Train_heads_exits_1_naming_the_line_of_a_malformed_log_and_on_an_empty_log()
    {
        string dir = Directory.CreateTempSubdirectory("train-heads-").FullName;
        var stderr = Console.Error;
        var captured = new StringWriter();
        try
        {
            string context = ExposureContext.Write(new float[RankingFeatures.Count], 1, new RankRequest { K = 1 });
            string good = FeedbackLog.ToLine(new FeedbackLogLine("r1", "", "", "m", DateTimeOffset.UnixEpoch, null, false, context,
                [new FeedbackLogAction("p1", 1, 1f, 1, 0, 0, 0, 0.1)]));
            string bad = Path.Combine(dir, "bad.jsonl");
            File.WriteAllLines(bad, [good, "{\"v\":1,\"recommendationId\":\"r2\"}"]);
            string empty = Path.Combine(dir, "empty.jsonl");
            File.WriteAllText(empty, "\n");
            string heads = Path.Combine(dir, "heads.json");

            Console.SetError(captured);
            Assert.Equal(ExitCodes.BadInput, Program.Main(["train-heads", "--log", bad, "--out", heads]));
            Assert.Equal(ExitCodes.BadInput, Program.Main(["train-heads", "--log", empty, "--out", heads]));
            Console.SetError(stderr);
            Assert.Contains("bad.jsonl:2:", captured.ToString());
            Assert.Contains("empty log", captured.ToString());
            Assert.False(File.Exists(heads), "no heads file is written from a bad log");
        }
        finally
        {
            Console.SetError(stderr);
            Directory.Delete(dir, recursive: true);
        }
    }
}
