using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Engine.Cli.Hosting;
using Engine.Control.Hosting;
using Engine.Control.Catalog;
using Engine.Cpu;
using Engine.Cpu.Vectors;
using Engine.Runtime.Llama;
using Engine.Runtime.Scheduling;
using Engine.Runtime.Tokenization;
using Engine.Server;
using Engine.Server.Handlers;
using Microsoft.Extensions.DependencyInjection;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine serve</c>: the storefront server (docs/PROTOCOL.md). Keys from flags or ENGINE_API_KEY /
/// ENGINE_ADMIN_KEY; with none it accepts loopback clients only. With --model, Generate runs on the
/// continuous-batching scheduler (a request naming a product and a template is product copy, answered
/// through the control plane's content cache: generated once per product, template, model and catalog
/// version); without, it answers "no generator model configured". Recommend
/// runs the ranking pipeline over the seeded demo catalog (--demo-catalog N, default 100k; 0 = "ranking
/// not available in this build"), with the shopper's profile from the control plane's session and
/// concurrent requests batched into one scan (<see cref="RankingRecommendHandler"/>). The same process hosts a silo of the control plane
/// (<see cref="ServeHost"/>): Events are acknowledged once the sessions stored them; --redis makes
/// that store Redis (and lets several serve processes form one cluster), without it state is in
/// memory and not durable. --dashboard-port serves the Orleans Dashboard (opt-in: its profiler
/// intercepts every grain call). Ctrl+C / SIGTERM drains the server, then stops the silo.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "TCP port", DefaultValueFactory = _ => 7070 };
        var address = new Option<string>("--address") { Description = "Address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var model = new Option<FileInfo?>("--model", "-m") { Description = "Generator GGUF model (llama family); none = Generate is not available" };
        var apiKey = new Option<string?>("--api-key") { Description = "Storefront API key (or ENGINE_API_KEY)" };
        var adminKey = new Option<string?>("--admin-key") { Description = "Admin API key (or ENGINE_ADMIN_KEY)" };
        var maxStreams = new Option<int>("--max-streams") { Description = "Generation streams decoded together", DefaultValueFactory = _ => 16 };
        var ctxSize = new Option<int>("--ctx-size") { Description = "KV positions per generation stream", DefaultValueFactory = _ => 512 };
        var threads = new Option<int>("--threads", "-t") { Description = "Compute threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var certificate = new Option<FileInfo?>("--tls-cert") { Description = "PKCS#12 certificate file: serve TLS" };
        var demoCatalog = new Option<int>("--demo-catalog") { Description = "Products in the seeded demo catalog that Recommend ranks (exact int8 scan); 0 = no ranking", DefaultValueFactory = _ => 100_000 };
        var redis = new Option<string?>("--redis") { Description = "Redis HOST:PORT[,options] for the control plane's clustering and storage; none = one silo, in-memory state (NOT durable)" };
        var siloPort = new Option<int>("--silo-port") { Description = "Control-plane silo-to-silo port", DefaultValueFactory = _ => 11111 };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "Control-plane client gateway port", DefaultValueFactory = _ => 30000 };
        var headsFile = new Option<FileInfo?>("--heads") { Description = "Scoring heads file (JSON, e.g. from `engine train-heads`); default: the built-in heads" };
        var dashboardPort = new Option<int>("--dashboard-port") { Description = "Serve the Orleans Dashboard (HTTP, no authentication) on this port of --address; 0 = off", DefaultValueFactory = _ => 0 };
        var gen0Budget = new Option<int>("--gen0-budget-mb") { Description = "Collect gen 0 after this many MB allocated (short GC pauses: Recommend's tail latency); 0 = the runtime's own budget", DefaultValueFactory = _ => Gen0Pacer.DefaultBudgetMegabytes };
        var command = new Command("serve", "Serve the storefront protocol over TCP, with the control plane in the same process");
        foreach (var o in new Option[] { port, address, model, apiKey, adminKey, maxStreams, ctxSize, threads, certificate, demoCatalog, redis, siloPort, gatewayPort, dashboardPort, headsFile, gen0Budget }) command.Options.Add(o);

        command.SetAction(r => CliErrors.Run(() =>
        {
            string? storefront = r.GetValue(apiKey) ?? NonEmpty(Environment.GetEnvironmentVariable("ENGINE_API_KEY"));
            string? admin = r.GetValue(adminKey) ?? NonEmpty(Environment.GetEnvironmentVariable("ENGINE_ADMIN_KEY"));
            if (!IPAddress.TryParse(r.GetValue(address), out IPAddress? ip)) throw new UserInputException($"--address: not an IP address: {r.GetValue(address)}");
            var options = new ServerOptions
            {
                Address = ip,
                Port = r.GetValue(port),
                StorefrontKeys = storefront is null ? [] : [storefront],
                AdminKeys = admin is null ? [] : [admin],
                Certificate = r.GetValue(certificate) is { } cert
                    ? System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(cert.FullName, null)
                    : null,
            };

            string? redisConnection = NonEmpty(r.GetValue(redis));
            if (redisConnection is not null)
            {
                try { ControlSiloBuilderExtensions.ParseRedis(redisConnection); }
                catch (ArgumentException e) { throw new UserInputException(e.Message); }
            }
            foreach (var (name, value) in new[] { ("--silo-port", r.GetValue(siloPort)), ("--gateway-port", r.GetValue(gatewayPort)) })
                if (value is < 1 or > 65535) throw new UserInputException($"{name} must be in 1..65535, got {value}");
            int dashboard = r.GetValue(dashboardPort);
            if (dashboard is < 0 or > 65535) throw new UserInputException($"--dashboard-port must be in 0..65535, got {dashboard}");
            var control = new ControlHostingOptions { Redis = redisConnection, SiloPort = r.GetValue(siloPort), GatewayPort = r.GetValue(gatewayPort) };
            CpuBackend? backend = null;
            LlamaModel? llama = null;
            GenerationScheduler? scheduler = null;
            SchedulerGenerateHandler? generate = null;
            string? generatorVersion = null;
            if (r.GetValue(model) is { } modelFile)
            {
                backend = new CpuBackend(threads: r.GetValue(threads));
                llama = LlamaModel.Load(modelFile.FullName, backend);
                var tokenizer = GgufTokenizer.Create(llama.File.Metadata);
                int streams = r.GetValue(maxStreams);
                scheduler = new GenerationScheduler(llama, tokenizer, new SchedulerOptions
                {
                    MaxStreams = streams,
                    ContextLength = r.GetValue(ctxSize),
                    MaxBatchRows = Math.Max(64, streams),
                });
                generatorVersion = $"{modelFile.Name} ({llama.Config.Layers} layers, {backend.Name})";
                Console.Error.WriteLine($"engine: generator {modelFile.Name}, up to {streams} streams of {scheduler.ContextLength} positions on {backend.Name}");
            }
            else
            {
                Console.Error.WriteLine("engine: no --model: Generate answers \"no generator model configured\"");
            }
            Engine.Runtime.Ranking.ScoringHeads? heads = null;
            if (r.GetValue(headsFile) is { } headsPath)
            {
                try { heads = Engine.Runtime.Ranking.ScoringHeads.Load(headsPath.FullName); }
                catch (InvalidDataException e) { throw new UserInputException($"--heads: {e.Message}"); }
                Console.Error.WriteLine($"engine: scoring heads {heads.Version} from {headsPath.Name}");
            }
            int demoProducts = r.GetValue(demoCatalog);
            if (demoProducts < 0) throw new UserInputException("--demo-catalog must be ≥ 0");
            int computeThreads = r.GetValue(threads);
            ServeEmbedder? embedder = null;
            CpuVectorScanner? scanner = null;
            DemoRanking? ranking = null;
            if (demoProducts > 0)
            {
                embedder = ServeEmbedder.Create(computeThreads, Console.Error.WriteLine);
                scanner = DemoRanking.CreateScanner(demoProducts, computeThreads);
                Console.Error.WriteLine($"engine: building the demo catalog of {demoProducts} products ({embedder.Description}, composed attribute embeddings)");
                ranking = DemoRanking.Build(demoProducts, embedder.Embedder, scanner, heads);
                Console.Error.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"engine: Recommend ranks {demoProducts} demo products (exact int8 scan on {scanner.Name}, scoring heads, business rules; concurrent requests batched into one scan), built in {ranking.BuildTime.TotalSeconds:F1} s"));
            }
            else
            {
                Console.Error.WriteLine("engine: --demo-catalog 0: Recommend answers \"ranking not available in this build\"");
            }
            Console.Error.WriteLine(redisConnection is null
                ? "engine: no --redis: control plane on localhost clustering with in-memory storage; sessions and stats are NOT durable and are lost when this process stops"
                : $"engine: control plane clustering and storage on Redis {redisConnection}");

            int gen0Megabytes = r.GetValue(gen0Budget);
            if (gen0Megabytes < 0) throw new UserInputException("--gen0-budget-mb must be ≥ 0");
            using Gen0Pacer? pacer = gen0Megabytes == 0 || Gen0Pacer.RuntimeSizesGen0() ? null : new Gen0Pacer(gen0Megabytes * (1L << 20));
            if (pacer is not null) Console.Error.WriteLine($"engine: gen-0 collections every {gen0Megabytes} MB allocated (--gen0-budget-mb; 0 = the runtime's budget)");
            if (GcEventStats.StartFromEnvironment())
                Console.Error.WriteLine("engine: ENGINE_GC_EVENTS: GC events counted into Stats (process.gc_events.*)");
            if (ranking is not null && !ExposureLogger.EnabledByEnvironment())
                Console.Error.WriteLine("engine: ENGINE_EXPOSURES=0: served Recommends are NOT logged as exposures (no decision log, no exposure counts)");
            RankingRecommendHandler? recommend = null;
            ExposureLogger? exposures = null;
            ServeHost host;
            try
            {
                host = ServeHost.StartAsync(options, context =>
                {
                    // Profiles cached in the server (no session-grain call per Recommend); events through this
                    // server drop the shopper's entry before they are acknowledged (read-your-writes).
                    var profiles = ranking is null ? null : new ShopperProfileCache(new GrainShopperProfiles(context.Grains));
                    // Each served list's exposure goes to the shopper's session off the request path (docs/FEEDBACK-LOG.md).
                    // ENGINE_EXPOSURES=0 turns it off (A/B of its cost; bench/recommend-pair.sh): nothing is logged then.
                    exposures = ranking is null || !ExposureLogger.EnabledByEnvironment() ? null : new ExposureLogger(context.Grains, context.Experiments);
                    recommend = ranking is null ? null
                        : new RankingRecommendHandler(ranking.Pipeline, profiles, ExperimentArms.Serving(context.Experiments, ranking.Pipeline.Options.Blend)) { Exposures = exposures };
                    // Product copy (ProductId + Template) goes through the control plane's content cache.
                    generate = scheduler is null ? null : new SchedulerGenerateHandler(scheduler, generatorVersion!, context.Grains);
                    return new ServerHandlers
                    {
                        Recommend = recommend,
                        Generate = generate,
                        Events = profiles is null ? context.Events : new ProfileInvalidatingEventSink(context.Events, profiles),
                        FeedbackExport = new ControlFeedbackExport(context.Grains),
                        StatsSources = new IStatsSource?[] { context.ControlStats, generate, recommend, exposures }.OfType<IStatsSource>().ToArray(),
                    };
                }, control, services: s =>
                {
                    if (ranking is not null) s.AddSingleton<IProductEmbeddings>(new IndexProductEmbeddings(ranking.Index));
                    if (scheduler is not null) s.AddSingleton<Engine.Control.Content.IContentGenerator>(new SchedulerContentGenerator(scheduler));
                },
                   dashboard: dashboard > 0 ? new IPEndPoint(ip, dashboard) : null).GetAwaiter().GetResult();
            }
            catch (Exception e) when (redisConnection is not null && RedisUnreachable(e) is { } why)
            {
                // The silo could not read the membership table: one line instead of a stack trace.
                throw new UserInputException($"--redis {redisConnection}: Redis is not reachable, the control plane cannot start ({why})");
            }
            var server = host.Server;
            Console.Error.WriteLine($"engine: control plane silo up (silo port {control.SiloPort}, gateway port {control.GatewayPort}); Events are acknowledged once stored");
            if (dashboard > 0)
                Console.Error.WriteLine($"engine: Orleans Dashboard on http://{new IPEndPoint(ip, dashboard)}/ (no authentication{(IPAddress.IsLoopback(ip) ? "" : ": reachable beyond this machine")})");
            if (options.LoopbackOnly)
                Console.Error.WriteLine("engine: no API keys configured (--api-key/--admin-key or ENGINE_API_KEY/ENGINE_ADMIN_KEY): accepting loopback clients only");
            Console.Error.WriteLine($"engine: listening on {server.EndPoint}{(options.Certificate is null ? "" : " (TLS)")}; Ctrl+C to stop");

            using var stop = new ManualResetEventSlim();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; stop.Set(); };
            Console.CancelKeyPress += onCancel;
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });
            stop.Wait();
            Console.CancelKeyPress -= onCancel;
            Console.Error.WriteLine("engine: draining");
            string finalStats;
            try { finalStats = host.ControlStatsJsonAsync(indented: false).GetAwaiter().GetResult(); }
            catch (Exception e) when (e is not OutOfMemoryException) { finalStats = $"(control stats unavailable: {e.Message})"; }
            // The server drains first (no new lists), then the queued exposures reach the silo, then it stops.
            host.Server.StopAsync().GetAwaiter().GetResult();
            recommend?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            exposures?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            host.DisposeAsync().AsTask().GetAwaiter().GetResult();
            ranking?.Dispose();
            scanner?.Dispose();
            embedder?.Dispose();
            scheduler?.Dispose();
            llama?.Dispose();
            backend?.Dispose();
            Console.Error.WriteLine($"engine: stopped; control plane stats: {finalStats}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static string? RedisUnreachable(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is StackExchange.Redis.RedisConnectionException or StackExchange.Redis.RedisTimeoutException)
                return x.Message.Split(" - ")[0];
        return null;
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
