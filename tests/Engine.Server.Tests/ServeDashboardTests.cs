using System.Net;
using System.Net.Sockets;
using Engine.Cli.Hosting;
using Engine.Control.Hosting;

namespace Engine.Server.Tests;

/// <summary>`engine serve --dashboard-port`: the Orleans Dashboard is served over HTTP beside the silo.</summary>
public class ServeDashboardTests
{
    [Fact]
    public async Task The_dashboard_answers_on_its_port_only_when_asked_for()
    {
        var port = FreePort();
        await using (var host = await ServeHost.StartAsync(
            new ServerOptions { Port = 0 },
            (events, stats) => new ServerHandlers { Events = events, StatsSources = [stats] },
            new ControlHostingOptions { SiloPort = FreePort(), GatewayPort = FreePort(), ClusterId = "dash-test", ServiceId = "dash-test" },
            logging: _ => { },
            dashboard: new IPEndPoint(IPAddress.Loopback, port)))
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
            using var page = await http.GetAsync($"http://127.0.0.1:{port}/");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("html", (await page.Content.ReadAsStringAsync()).ToLowerInvariant());
        }

        // Without the option nothing listens there.
        await using (await ServeHost.StartAsync(
            new ServerOptions { Port = 0 },
            (events, stats) => new ServerHandlers { Events = events, StatsSources = [stats] },
            new ControlHostingOptions { SiloPort = FreePort(), GatewayPort = FreePort(), ClusterId = "dash-test2", ServiceId = "dash-test2" },
            logging: _ => { }))
        {
            using var client = new TcpClient();
            await Assert.ThrowsAnyAsync<SocketException>(() => client.ConnectAsync(IPAddress.Loopback, port));
        }
    }

    private static int FreePort() => Engine.Tests.Shared.TestPorts.Free();
}
