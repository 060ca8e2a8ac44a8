using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Engine.Cpu;
using Engine.Runtime.Llama;
using Engine.Runtime.Scheduling;
using Engine.Runtime.Tokenization;
using Engine.Server;
using Engine.Server.Handlers;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine serve</c>: the storefront server (docs/PROTOCOL.md). Keys from flags or ENGINE_API_KEY /
/// ENGINE_ADMIN_KEY; with none it accepts loopback clients only. With --model, Generate runs on the
/// continuous-batching scheduler; without, it answers "no generator model configured". Recommend
/// ranks a seeded demo catalog (--demo-catalog N, default 100k; 0 = "ranking not available in this
/// build") until issue 4's ranking lands. Events are counted in process
/// until the control plane takes them. Ctrl+C / SIGTERM drains gracefully.
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
        var command = new Command("serve", "Serve the storefront protocol over TCP");
        foreach (var o in new Option[] { port, address, model, apiKey, adminKey, maxStreams, ctxSize, threads, certificate, demoCatalog }) command.Options.Add(o);

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

            var sink = new CountingEventSink();
            CpuBackend? backend = null;
            LlamaModel? llama = null;
            GenerationScheduler? scheduler = null;
            SchedulerGenerateHandler? generate = null;
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
                generate = new SchedulerGenerateHandler(scheduler, $"{modelFile.Name} ({llama.Config.Layers} layers, {backend.Name})");
                Console.Error.WriteLine($"engine: generator {modelFile.Name}, up to {streams} streams of {scheduler.ContextLength} positions on {backend.Name}");
            }
            else
            {
                Console.Error.WriteLine("engine: no --model: Generate answers \"no generator model configured\"");
            }
            int demoProducts = r.GetValue(demoCatalog);
            if (demoProducts < 0) throw new UserInputException("--demo-catalog must be ≥ 0");
            DemoCatalogRecommender? recommend = demoProducts > 0 ? new DemoCatalogRecommender(demoProducts) : null;
            Console.Error.WriteLine(recommend is null
                ? "engine: --demo-catalog 0: Recommend answers \"ranking not available in this build\""
                : $"engine: Recommend ranks a seeded demo catalog of {demoProducts} products (exact int8 scan, 384 dims) until the real ranking lands");
            Console.Error.WriteLine("engine: Events are counted in process until the control plane takes them");

            var handlers = new ServerHandlers
            {
                Recommend = recommend,
                Generate = generate,
                Events = sink,
                StatsSources = generate is null ? [sink] : [sink, generate],
            };
            var server = new EngineServer(options, handlers);
            server.StartAsync().GetAwaiter().GetResult();
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
            server.StopAsync().GetAwaiter().GetResult();
            scheduler?.Dispose();
            llama?.Dispose();
            backend?.Dispose();
            Console.Error.WriteLine($"engine: stopped ({sink.Total} events counted)");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
