using System.Net.Sockets;
using Engine.Cli.Hosting;
using Engine.Client;
using Engine.Control.Catalog;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Engine.Protocol;
using Engine.Protocol.Messages;
using ControlKind = Engine.Control.Sessions.EventKind;
using ProtocolKind = Engine.Protocol.Messages.EventKind;

namespace Engine.Server.Tests;

/// <summary>`engine serve`'s composition in process: one in-memory silo plus the server on a loopback
/// port; events sent with <see cref="EngineClient"/> must land in the control plane's sessions.</summary>
public class ServeCompositionTests
{
    private static async Task<ServeHost> StartAsync() => await ServeHost.StartAsync(
        new ServerOptions { Port = 0 },
        (events, stats) => new ServerHandlers { Events = events, StatsSources = [stats] },
        new ControlHostingOptions { SiloPort = FreePort(), GatewayPort = FreePort(), ClusterId = "serve-test", ServiceId = "serve-test" },
        o => o.FeedbackFlushInterval = TimeSpan.FromMilliseconds(100),
        logging: _ => { });

    private static int FreePort() => Engine.Tests.Shared.TestPorts.Free();

    [Fact]
    public async Task Events_sent_to_the_server_are_in_the_session_grains_when_acknowledged()
    {
        await using var host = await StartAsync();
        foreach (var p in new[] { "p1", "p2" })
            await host.Grains.GetGrain<IProductGrain>(p).Upsert(new ProductUpdate(p, "test", new Dictionary<string, string>(), 1m, 5, 0f, [1f, 0f, 0.5f, 0.25f]));
        await using var client = await EngineClient.ConnectAsync(new EngineClientOptions { Port = host.EndPoint.Port });

        long t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        ShopperEvent[] batch =
        [
            new() { CustomerId = "alice", Kind = (byte)ProtocolKind.View, ProductId = "p1", TimeUnixMs = t0 },
            new() { CustomerId = "alice", Kind = (byte)ProtocolKind.AddToCart, ProductId = "p2", TimeUnixMs = t0 + 1 },
            new() { CustomerId = "bob", Kind = (byte)ProtocolKind.Click, ProductId = "p2", TimeUnixMs = t0 + 2 },
        ];
        Assert.Equal(3, await client.SendEventsAsync(batch));

        // Acknowledged means stored: read back straight from the session grains, no waiting.
        var alice = await host.Grains.GetGrain<ICustomerSessionGrain>("alice").GetProfile();
        Assert.Equal(2, alice.EventsApplied);
        Assert.Equal(1, alice.Cart["p2"]);
        Assert.Equal(["p2", "p1"], alice.RecentItems);
        Assert.Equal(1, (await host.Grains.GetGrain<ICustomerSessionGrain>("bob").GetProfile()).EventsApplied);

        // A resend (lost ack) is answered as accepted but not applied twice: ids derive from content.
        Assert.Equal(3, await client.SendEventsAsync(batch));
        Assert.Equal(2, (await host.Grains.GetGrain<ICustomerSessionGrain>("alice").GetProfile()).EventsApplied);

        // An unknown product is not applied and not acknowledged as accepted; the rest of the batch is.
        Assert.Equal(1, await client.SendEventsAsync([
            new ShopperEvent { CustomerId = "carol", Kind = (byte)ProtocolKind.View, ProductId = "nope", TimeUnixMs = t0 },
            new ShopperEvent { CustomerId = "carol", Kind = (byte)ProtocolKind.Purchase, ProductId = "p1", TimeUnixMs = t0 + 1 },
        ]));

        // eventsPersisted is counted through the feedback pre-aggregators (flushed every 100 ms here).
        string json = "";
        long persisted = 0;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30); // a ceiling for a loaded machine, not a timing assert
        while (DateTime.UtcNow < until)
        {
            json = await host.ControlStatsJsonAsync();
            persisted = System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("eventsPersisted").GetInt64();
            if (persisted >= 4) break;
            await Task.Delay(50);
        }
        Assert.True(persisted == 4, $"expected eventsPersisted 4, stats: {json}");

        var stats = await client.StatsAsync("control.");
        Assert.Contains(stats.Entries, e => e.Name == "control.events_unknown_product" && e.Value == 1);
    }

    [Fact]
    public async Task An_event_the_control_plane_cannot_map_is_an_error_frame_not_an_ack()
    {
        await using var host = await StartAsync();
        await using var client = await EngineClient.ConnectAsync(new EngineClientOptions { Port = host.EndPoint.Port });
        // Empty customer: the sessions cannot own it; the server must not acknowledge it.
        var e = await Assert.ThrowsAnyAsync<Exception>(() => client.SendEventsAsync([new ShopperEvent { CustomerId = "", Kind = (byte)ProtocolKind.View, ProductId = "p1" }]));
        Assert.Contains("empty customer id", e.Message);
    }

    [Theory]
    [InlineData(ProtocolKind.View, ControlKind.View)]
    [InlineData(ProtocolKind.Click, ControlKind.Click)]
    [InlineData(ProtocolKind.AddToCart, ControlKind.AddToCart)]
    [InlineData(ProtocolKind.Purchase, ControlKind.Purchase)]
    [InlineData(ProtocolKind.Return, ControlKind.Return)]
    public void Protocol_kinds_map_to_control_kinds_by_meaning(ProtocolKind wire, ControlKind expected) =>
        Assert.Equal(expected, ControlPlaneEventSink.MapKind((byte)wire));

    [Fact]
    public void An_unknown_kind_is_a_clear_invalid_argument()
    {
        var e = Assert.Throws<EventRejectedException>(() => ControlPlaneEventSink.MapKind(9));
        Assert.Equal(ErrorCode.InvalidArgument, e.Code);
        Assert.Contains("unknown event kind 9", e.Message);
    }
}
