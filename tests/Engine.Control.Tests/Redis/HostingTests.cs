using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Microsoft.Extensions.Logging;

namespace Engine.Control.Tests.Redis;

[CollectionDefinition(Name)]
public sealed class SiloCollection
{
    /// <summary>Tests that start their own silos run one at a time (2 cores).</summary>
    public const string Name = "silos";
}

[Collection(SiloCollection.Name)]
public class HostingTests
{
    [Fact]
    public async Task Default_hosting_runs_one_silo_in_memory_and_warns_that_state_is_not_durable()
    {
        var logs = new ListLoggerProvider();
        await using var silo = await TestSilo.StartAsync(redis: null, TestData.Id("local"), logs);
        var customer = TestData.Id("c");
        Assert.Equal(EventOutcome.Accepted, await silo.Events.RecordAsync(TestData.Event(customer, EventKind.SearchNoResults, null)));
        Assert.Contains(logs.Lines, l => l.Level == LogLevel.Warning && l.Message.Contains("NOT durable"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(",,,")]
    public void A_bad_redis_connection_string_is_refused_with_a_message(string connection)
    {
        var ex = Assert.Throws<ArgumentException>(() => ControlSiloBuilderExtensions.ParseRedis(connection));
        Assert.Contains("--redis", ex.Message);
    }
}
