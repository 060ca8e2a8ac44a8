using Engine.Client;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server.Tests;

public class HandshakeAndAuthTests
{
    private static ServerOptions Keyed => new() { StorefrontKeys = ["shop-key"], AdminKeys = ["admin-key"] };

    [Fact]
    public async Task Hello_with_a_storefront_key_gets_storefront_role_and_capabilities()
    {
        await using var host = new InProcessServer(Keyed, new ServerHandlers { Recommend = new EchoRecommender() });
        var raw = new RawConnection(host.Connect(isLoopback: false).Client);
        await raw.HelloAsync("shop-key");
        var frame = await raw.ReadAsync();
        Assert.Equal(Opcode.HelloOk, frame!.Value.Opcode);
        var ok = (HelloOk)frame.Value.Body!;
        Assert.Equal((byte)Roles.Storefront, ok.Roles);
        Assert.Equal((ulong)(Capabilities.Recommend | Capabilities.Stats), ok.Capabilities);
        Assert.Equal((uint)ProtocolConstants.DefaultMaxBodyBytes, ok.MaxBodyBytes);
    }

    [Fact]
    public async Task Unknown_key_is_refused_and_the_connection_closed()
    {
        await using var host = new InProcessServer(Keyed);
        var raw = new RawConnection(host.Connect(isLoopback: false).Client);
        await raw.HelloAsync("wrong");
        Assert.Equal(ErrorCode.Unauthenticated, await raw.ReadErrorAsync(0));
        Assert.True(await raw.ClosedAsync());
    }

    [Fact]
    public async Task Without_keys_only_loopback_clients_are_accepted()
    {
        await using var host = new InProcessServer(new ServerOptions());
        var remote = new RawConnection(host.Connect(isLoopback: false).Client);
        await remote.HelloAsync("anything");
        Assert.Equal(ErrorCode.Unauthenticated, await remote.ReadErrorAsync(0));

        var local = new RawConnection(host.Connect(isLoopback: true).Client);
        await local.HelloAsync();
        var ok = (HelloOk)(await local.ReadAsync())!.Value.Body!;
        Assert.Equal((byte)(Roles.Storefront | Roles.Admin), ok.Roles);
    }

    [Fact]
    public async Task Storefront_key_is_forbidden_admin_calls_and_admin_key_is_not()
    {
        await using var host = new InProcessServer(Keyed, new ServerHandlers { Recommend = new EchoRecommender() });
        await using var shop = host.Client("shop-key");
        var forbidden = await Assert.ThrowsAsync<EngineRequestException>(() => shop.StatsAsync());
        Assert.Equal(ErrorCode.Forbidden, forbidden.Code);
        Assert.Single((await shop.RecommendAsync(new RecommendRequest { CustomerId = "c", K = 1 })).Items);

        await using var admin = host.Client("admin-key");
        var stats = await admin.StatsAsync("server.");
        Assert.Contains(stats.Entries, e => e.Name == "server.requests" && e.Value >= 1);
        Assert.Single((await admin.RecommendAsync(new RecommendRequest { CustomerId = "c", K = 1 })).Items);
    }

    [Fact]
    public async Task Requests_before_hello_are_refused_but_health_is_answered()
    {
        await using var host = new InProcessServer(Keyed, new ServerHandlers { Recommend = new EchoRecommender() });
        var raw = new RawConnection(host.Connect(isLoopback: false).Client);
        await raw.SendAsync(Opcode.Recommend, 1, new RecommendRequest { CustomerId = "c" });
        Assert.Equal(ErrorCode.HelloRequired, await raw.ReadErrorAsync(1));
        await raw.SendAsync(Opcode.Health, 2, new HealthRequest());
        var (op, body) = await raw.ReadTerminalAsync(2);
        Assert.Equal(Opcode.HealthResult, op);
        Assert.Equal((byte)HealthStatus.Ok, ((HealthResult)body!).Status);
    }

    [Fact]
    public async Task A_hello_that_never_comes_closes_the_connection_with_an_error()
    {
        await using var host = new InProcessServer(new ServerOptions { HelloTimeout = TimeSpan.FromMilliseconds(100) });
        var (client, served) = host.Connect();
        var raw = new RawConnection(client);
        Assert.Equal(ErrorCode.HelloRequired, await raw.ReadErrorAsync(0));
        Assert.True(await raw.ClosedAsync());
        await served.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Not_configured_operations_say_so()
    {
        await using var host = new InProcessServer();
        await using var client = host.Client();
        var generate = await Assert.ThrowsAsync<EngineRequestException>(() => client.GenerateTextAsync(new GenerateRequest { Prompt = "x" }));
        Assert.Equal(ErrorCode.NotAvailable, generate.Code);
        Assert.Contains("no generator model configured", generate.Message);
        var recommend = await Assert.ThrowsAsync<EngineRequestException>(() => client.RecommendAsync(new RecommendRequest { CustomerId = "c" }));
        Assert.Contains("ranking not available in this build", recommend.Message);
    }

    [Fact]
    public async Task Invalid_arguments_are_answered_with_InvalidArgument()
    {
        await using var host = new InProcessServer(handlers: new ServerHandlers { Recommend = new EchoRecommender(), Generate = new WordGenerator(), Events = new CountingEventSink() });
        await using var client = host.Client();
        Assert.Equal(ErrorCode.InvalidArgument, (await Assert.ThrowsAsync<EngineRequestException>(() => client.RecommendAsync(new RecommendRequest { K = 0 }))).Code);
        Assert.Equal(ErrorCode.InvalidArgument, (await Assert.ThrowsAsync<EngineRequestException>(() => client.GenerateTextAsync(new GenerateRequest { Prompt = "" }))).Code);
        Assert.Equal(ErrorCode.InvalidArgument, (await Assert.ThrowsAsync<EngineRequestException>(() => client.SendEventsAsync([new ShopperEvent { Kind = 99 }]))).Code);
    }
}
