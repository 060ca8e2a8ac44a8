using System.Net;
using System.Net.Sockets;

namespace Engine.Tests.Shared;

/// <summary>
/// Loopback TCP ports for tests that must name a port before something binds it (Orleans silo and gateway
/// ports, a private redis-server, a dashboard). The kernel picks a free one (bind to port 0) and this process
/// never hands the same port out twice: the kernel picks at random and may offer a port again as soon as the
/// probe releases it, so two tests running side by side could otherwise be given the same port before either
/// bound it (Linux: inet_csk_find_open_port).
/// </summary>
public static class TestPorts
{
    private static readonly HashSet<int> HandedOut = [];

    /// <summary>A port that was free a moment ago and that no other caller in this process has been given.</summary>
    public static int Free()
    {
        for (var attempt = 0; ; attempt++)
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            lock (HandedOut)
                if (HandedOut.Add(port)) return port;
            if (attempt >= 1000) throw new InvalidOperationException("no loopback port left that this process has not handed out");
        }
    }
}
