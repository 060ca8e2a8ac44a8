using Engine.Cli.Commands;
using Engine.Client;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server.Tests;

/// <summary>`engine loadgen --warmup S`: the same open-loop schedule runs S seconds first, and those requests are sent and
/// answered but left out of every figure (over a real loopback server).</summary>
public class LoadgenWarmupTests
{
    [Theory]
    [InlineData(0.0, 0)]
    [InlineData(0.5, 50)]
    public async Task Warmup_requests_reach_the_server_but_not_the_figures(double warmupSeconds, int warmupRequests)
    {
        var recommender = new CountingRecommender();
        await using var server = new EngineServer(new ServerOptions { Port = 0, StorefrontKeys = ["k"] }, new ServerHandlers { Recommend = recommender });
        await server.StartAsync();
        EngineClient[] clients = [await EngineClient.ConnectAsync(new EngineClientOptions { Port = server.EndPoint!.Port, ApiKey = "k" })];
        try
        {
            var m = await LoadgenCommand.MeasureAsync(clients, rate: 100, seconds: 1, warmupSeconds, LoadgenCommand.ParseMix("recommend=100"), maxTokens: 1);

            Assert.Equal(100 + warmupRequests, recommender.Calls);              // every request was served
            Assert.Equal((100L, 100L, 0L), (m.Total.Sent, m.Total.Ok, m.Total.Errors)); // the figures hold the measured second only
            Assert.Equal(100, m.Total.Latency.TotalCount);
            Assert.Equal(100, m.ByKind[LoadgenCommand.Kind.Recommend].Latency.TotalCount);
            Assert.Equal((long)warmupRequests, m.Warmup.Sent);
            Assert.Equal(warmupRequests, m.Warmup.Latency.TotalCount);
            Assert.InRange(m.Seconds, 0.9, 30); // the measured window, from its first scheduled request (a ceiling for a loaded machine)
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    private sealed class CountingRecommender : IRecommendHandler
    {
        private int _calls;
        public int Calls => Volatile.Read(ref _calls);

        public ValueTask<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            return ValueTask.FromResult(new RecommendResult { RecommendationId = "r", Items = [new RecommendedItem { ProductId = "p", Score = 1 }], ModelVersion = "t" });
        }
    }
}
