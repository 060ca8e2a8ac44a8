using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Engine.Client;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server.Tests;

/// <summary>The same server over real loopback sockets (port 0 = a free port), with and without TLS.</summary>
public class LoopbackSocketTests
{
    private static ServerHandlers Handlers => new() { Recommend = new EchoRecommender(), Generate = new WordGenerator(6), Events = new CountingEventSink() };

    private static async Task<EngineServer> StartAsync(ServerOptions? options = null)
    {
        var server = new EngineServer(options ?? new ServerOptions { Port = 0, StorefrontKeys = ["k"] }, Handlers);
        await server.StartAsync();
        return server;
    }

    [Fact]
    public async Task Client_calls_work_over_loopback_tcp()
    {
        await using var server = await StartAsync();
        await using var client = await EngineClient.ConnectAsync(new EngineClientOptions { Port = server.EndPoint!.Port, ApiKey = "k" });
        Assert.Equal((byte)Roles.Storefront, client.Server!.Roles);
        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => client.RecommendAsync(new RecommendRequest { CustomerId = $"c{i}", K = 3 })));
        Assert.Equal("r-c49", results[49].RecommendationId);
        var pieces = new List<string>();
        await foreach (var p in client.GenerateAsync(new GenerateRequest { Prompt = "x", MaxTokens = 6 })) pieces.Add(p);
        Assert.Equal("w0 w1 w2 w3 w4 w5 ", string.Concat(pieces));
        Assert.Equal(3, await client.SendEventsAsync(Enumerable.Range(0, 3).Select(i => new ShopperEvent { CustomerId = "c", Kind = 1, ProductId = "p" })));
    }

    [Fact]
    public async Task Health_probe_needs_no_key()
    {
        await using var server = await StartAsync();
        var health = await EngineClient.ProbeHealthAsync(new EngineClientOptions { Port = server.EndPoint!.Port });
        Assert.Equal((byte)HealthStatus.Ok, health.Status);
        Assert.Equal((ulong)(Capabilities.Recommend | Capabilities.Generate | Capabilities.Events | Capabilities.Stats), health.Capabilities);
    }

    [Fact]
    public async Task A_bad_client_does_not_disturb_a_good_one_on_the_same_server()
    {
        await using var server = await StartAsync();
        await using var good = await EngineClient.ConnectAsync(new EngineClientOptions { Port = server.EndPoint!.Port, ApiKey = "k" });
        using (var bad = new TcpClient())
        {
            await bad.ConnectAsync(IPAddress.Loopback, server.EndPoint.Port);
            var stream = bad.GetStream();
            await stream.WriteAsync(new byte[4096].Select((_, i) => (byte)(i * 31)).ToArray());
            var buffer = new byte[256];
            while (await stream.ReadAsync(buffer) > 0) { } // the server answers BadFrame and closes
        }
        Assert.Equal("r-ok", (await good.RecommendAsync(new RecommendRequest { CustomerId = "ok", K = 1 })).RecommendationId);
    }

    [Fact]
    public async Task The_client_reconnects_after_the_connection_is_lost()
    {
        // In process: each connect gets a fresh pipe pair served by whichever server is current.
        var first = new EngineServer(new ServerOptions(), Handlers);
        EngineServer current = first;
        int connects = 0;
        var pipes = new List<ReadToEndPipe>();
        var client = new EngineClient(new EngineClientOptions
        {
            ReconnectBaseDelay = TimeSpan.FromMilliseconds(1),
            TransportFactory = token =>
            {
                Interlocked.Increment(ref connects);
                var (c, s) = DuplexPipe.CreatePair();
                _ = current.ServeAsync(s);
                var pipe = new ReadToEndPipe(c);
                lock (pipes) pipes.Add(pipe);
                return ValueTask.FromResult<IDuplexPipe>(pipe);
            },
        });
        await using (client)
        {
            Assert.Equal("r-a", (await client.RecommendAsync(new RecommendRequest { CustomerId = "a", K = 1 })).RecommendationId);
            current = new EngineServer(new ServerOptions(), Handlers);
            await first.StopAsync(); // GoAway, then the connection closes
            // The client learns of it in its receive loop: a call sent before that loop handled the GoAway would go
            // out on the closing connection and fail, so wait for it (a fixed delay was a guess on a loaded machine).
            await pipes[0].ReadToEnd.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal("r-b", (await client.RecommendAsync(new RecommendRequest { CustomerId = "b", K = 1 })).RecommendationId);
            Assert.Equal(2, connects);
            await current.StopAsync();
        }
    }

    /// <summary>The client's end of an in-process connection that says when the client has handled everything the
    /// server sent before closing: its receive loop routes each frame (GoAway included) before it advances past it.</summary>
    private sealed class ReadToEndPipe(IDuplexPipe inner) : IDuplexPipe
    {
        private readonly TaskCompletionSource _end = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private PipeReader? _input;

        public Task ReadToEnd => _end.Task;
        public PipeReader Input => _input ??= new Reader(inner.Input, _end);
        public PipeWriter Output => inner.Output;

        private sealed class Reader(PipeReader inner, TaskCompletionSource end) : PipeReader
        {
            private ReadResult _last;

            public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
                _last = await inner.ReadAsync(cancellationToken);

            public override bool TryRead(out ReadResult result)
            {
                if (!inner.TryRead(out result)) return false;
                _last = result;
                return true;
            }

            public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

            public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
            {
                var all = _last.IsCompleted && _last.Buffer.Slice(consumed).IsEmpty; // read before the buffer is released
                inner.AdvanceTo(consumed, examined);
                if (all) end.TrySetResult();
            }

            public override void CancelPendingRead() => inner.CancelPendingRead();
            public override void Complete(Exception? exception = null) => inner.Complete(exception);
        }
    }

    [Fact]
    public async Task Tls_connections_are_served_when_a_certificate_is_configured()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using X509Certificate2 ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        // Round-trip through PKCS#12 so the private key is usable by SslStream on every platform.
        using X509Certificate2 certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
        await using var server = await StartAsync(new ServerOptions { Port = 0, StorefrontKeys = ["k"], Certificate = certificate });
        await using var client = await EngineClient.ConnectAsync(new EngineClientOptions
        {
            Port = server.EndPoint!.Port,
            ApiKey = "k",
            UseTls = true,
            TlsTargetHost = "localhost",
            ServerCertificateValidation = (_, cert, _, _) => cert?.GetCertHashString() == certificate.GetCertHashString(),
        });
        Assert.Equal("r-tls", (await client.RecommendAsync(new RecommendRequest { CustomerId = "tls", K = 2 })).RecommendationId);
    }
}
