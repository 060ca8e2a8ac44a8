using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Core.Backend;
using Engine.Cpu.Vectors;
using Engine.Kernels;
using Engine.Runtime.Encoding;
using Engine.Runtime.Ranking;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine rank --catalog F --query T --k 20</c>: ranks a catalog file's products for a search text (or by
/// popularity without one) through the full pipeline (index → scoring heads → business rules) and prints a table
/// (rank, product, title, price, score, reason) on stdout; what was loaded, built and how long it took on stderr.
/// The product vectors are cached beside the catalog (F.index, F.index.json) and rebuilt when the catalog changes.
/// <c>--backend</c> picks where the encoder runs and where the index is scanned (<see cref="CreateScanner"/>): the int8 scan
/// on the SIMD CPU or on the GPU through ILGPU; the scan's candidates are rescored on the host either way.
/// </summary>
internal static class RankCommand
{
    private static readonly string[] EmbedderNames = ["minilm", "hash"];
    private static readonly string[] ModeNames = ["auto", "full", "composed"];

    /// <summary>Largest catalog that "auto" embeds product by product (MiniLM Q8_0 here: 3000 demo products took 106 s
    /// on a busy 2-core machine, 41 s of CPU; once, then cached); larger ones use the composed-attributes fast path.</summary>
    private const int AutoFullTextLimit = 5_000;

    public static Command Create()
    {
        var catalog = new Option<string>("--catalog", "-c") { Description = "Catalog file (JSON lines, from `engine catalog synth`)", Required = true };
        var query = new Option<string?>("--query", "-q") { Description = "Search text, e.g. \"summer dresses under $50\" (price and category words become filters); none: by popularity" };
        var k = new Option<int>("--k", "-k") { Description = $"Items to return (1 to {RankingPipeline.MaxK})", DefaultValueFactory = _ => 20 };
        var category = new Option<string?>("--category") { Description = "Restrict to this category" };
        var minPrice = new Option<float>("--min-price") { Description = "Lowest price (inclusive)", DefaultValueFactory = _ => 0 };
        var maxPrice = new Option<float>("--max-price") { Description = "Highest price (inclusive)", DefaultValueFactory = _ => float.PositiveInfinity };
        var allowOutOfStock = new Option<bool>("--allow-out-of-stock") { Description = "Show out-of-stock products (ranked lower) instead of dropping them" };
        var heads = new Option<string?>("--heads") { Description = "Scoring heads file (JSON; default: the built-in heads)" };
        var embedder = new Option<string>("--embedder") { Description = "Text encoder: minilm (all-MiniLM-L6-v2 on our kernels) or hash (lexical stand-in, no model)", DefaultValueFactory = _ => "minilm" };
        embedder.AcceptOnlyFromAmong(EmbedderNames);
        var mode = new Option<string>("--mode") { Description = $"Product vectors: full (embed each product's text), composed (demo fast path: attribute phrases) or auto (full up to {AutoFullTextLimit} products)", DefaultValueFactory = _ => "auto" };
        mode.AcceptOnlyFromAmong(ModeNames);
        var backend = new Option<string>("--backend")
        {
            Description = "Compute backend of the encoder and the index scan: cpu, reference (scalar encoder, cpu scan), ilgpu (CUDA GPU; falls back to cpu with a message) or ilgpu-cpu (ILGPU CPU accelerator, for testing)",
            DefaultValueFactory = _ => "cpu",
        };
        backend.AcceptOnlyFromAmong(GenerateCommand.BackendNames);
        var threads = new Option<int>("--threads", "-t") { Description = "Compute threads (cpu backend)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var precision = new Option<string>("--precision") { Description = "MiniLM matrix weights: q8_0 or f32", DefaultValueFactory = _ => "q8_0" };
        precision.AcceptOnlyFromAmong("q8_0", "f32");
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Where MiniLM's converted weights are cached (default: as `engine embed`)" };

        var command = new Command("rank", "Rank a catalog's products for a search text: vector candidates, scoring heads, business rules, a reason per item.");
        foreach (var o in new Option[] { catalog, query, k, category, minPrice, maxPrice, allowOutOfStock, heads, embedder, mode, backend, threads, precision, cacheDir })
            command.Options.Add(o);
        command.SetAction(r => CliErrors.Run(() => Run(new Request(
            r.GetValue(catalog)!, r.GetValue(query), r.GetValue(k), r.GetValue(category), r.GetValue(minPrice), r.GetValue(maxPrice),
            r.GetValue(allowOutOfStock), r.GetValue(heads), r.GetValue(embedder)!, r.GetValue(mode)!, r.GetValue(backend)!, r.GetValue(threads),
            r.GetValue(precision)!, r.GetValue(cacheDir)))));
        return command;
    }

    /// <summary>What <c>engine rank</c> was asked, after parsing.</summary>
    internal sealed record Request(
        string Catalog, string? Query, int K, string? Category, float MinPrice, float MaxPrice, bool AllowOutOfStock,
        string? Heads, string Embedder, string Mode, string Backend, int Threads, string Precision, string? CacheDir);

    private static int Run(Request q)
    {
        var (result, products) = Rank(q, Console.Error);
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn(new TableColumn("rank").RightAligned()).AddColumn("product").AddColumn("title")
            .AddColumn(new TableColumn("price").RightAligned()).AddColumn(new TableColumn("score").RightAligned()).AddColumn("reason");
        for (int i = 0; i < result.Items.Count; i++)
        {
            var item = result.Items[i];
            var product = products[item.ProductId];
            table.AddRow(
                (i + 1).ToString(CultureInfo.InvariantCulture), Markup.Escape(item.ProductId), Markup.Escape(product.Title),
                product.Price.ToString("F2", CultureInfo.InvariantCulture), item.Score.ToString("F3", CultureInfo.InvariantCulture),
                Markup.Escape(item.Reason));
        }
        var stdout = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        if (Console.IsOutputRedirected) stdout.Profile.Width = 200; // a file or pipe gets whole rows, not an 80-column wrap
        stdout.Write(table);
        if (result.Items.Count == 0) Console.Error.WriteLine("no products match the query's filters");
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Loads the catalog, builds or loads its index on the scanner that <c>q.Backend</c> picks, and ranks; what was loaded,
    /// built and how long it took goes to <paramref name="log"/>. Returns the result and the ranked products by id.
    /// </summary>
    internal static (RankResult Result, IReadOnlyDictionary<string, CatalogProduct> Products) Rank(Request q, TextWriter log)
    {
        if (q.K is < 1 or > RankingPipeline.MaxK) throw new UserInputException($"--k {q.K}: must be between 1 and {RankingPipeline.MaxK}");
        if (!(q.MinPrice >= 0) || !(q.MaxPrice >= q.MinPrice)) throw new UserInputException($"--min-price {q.MinPrice} / --max-price {q.MaxPrice}: need 0 ≤ min ≤ max");
        if (q.Threads < 1) throw new UserInputException($"--threads {q.Threads}: must be at least 1");
        if (!File.Exists(q.Catalog)) throw new UserInputException($"--catalog {q.Catalog}: no such file");

        var clock = Stopwatch.StartNew();
        var catalog = BadData(() => CatalogFile.Read(q.Catalog));
        if (catalog.Products.Count == 0) throw new UserInputException($"--catalog {q.Catalog}: the catalog holds no products");
        var headSet = q.Heads is null ? ScoringHeads.Default : BadData(() => ScoringHeads.Load(q.Heads));
        log.WriteLine($"catalog: {catalog.Products.Count} products, version {catalog.Version} ({clock.Elapsed.TotalSeconds:F1} s)");

        using var compute = q.Embedder == "minilm" ? GenerateCommand.CreateBackend(q.Backend, q.Threads) : null;
        using var encoder = CreateEmbedder(q, compute);
        log.WriteLine($"encoder: {encoder.Embedder.ModelVersion}{(compute is null ? "" : $" on {compute.Name}")}");
        var mode = q.Mode switch
        {
            "full" => CatalogEmbeddingMode.FullText,
            "composed" => CatalogEmbeddingMode.ComposedAttributes,
            _ => catalog.Products.Count <= AutoFullTextLimit ? CatalogEmbeddingMode.FullText : CatalogEmbeddingMode.ComposedAttributes,
        };
        var build = Stopwatch.StartNew();
        using var scan = CreateScanner(q.Backend, q.Threads, compute, log);
        var scanner = scan.Scanner;
        int candidates = Math.Min(catalog.Products.Count, Math.Max(q.K * new RankingOptions().CandidatesPerItem, new RankingOptions().MinCandidates));
        if (candidates > scan.MaxCandidates)
            throw new UserInputException($"--k {q.K}: the {scanner.Name} scanner keeps at most {scan.MaxCandidates} candidates, {candidates} needed; use a smaller --k or --backend cpu");
        log.WriteLine($"scanner: {scanner.Name}");
        bool rebuilt = false;
        // A bar when the first build may take seconds: MiniLM at ~5 ms a product, or a large composed catalog.
        long work = mode == CatalogEmbeddingMode.FullText ? catalog.Products.Count * 50L : catalog.Products.Count;
        using var productIndex = CatalogCommand.WithProgress($"embedding {catalog.Products.Count} products ({mode})", work,
            progress => CatalogIndex.LoadOrBuild(q.Catalog, catalog, encoder.Embedder, mode, scanner, progress, out rebuilt));
        log.WriteLine(rebuilt
            ? $"index: built {productIndex.Count} × {productIndex.Dimensions} ({mode}, {encoder.Embedder.ModelVersion}) in {build.Elapsed.TotalSeconds:F1} s; cached as {q.Catalog}{CatalogIndex.IndexSuffix}"
            : $"index: loaded from {q.Catalog}{CatalogIndex.IndexSuffix} ({build.Elapsed.TotalSeconds:F1} s)");

        using var pipeline = new RankingPipeline(catalog.Products, productIndex, encoder.Embedder, headSet, catalogVersion: catalog.Version);
        var request = new RankRequest
        {
            QueryText = q.Query,
            K = q.K,
            Category = q.Category,
            AllowOutOfStock = q.AllowOutOfStock,
            Filter = new ProductFilter { MinPrice = q.MinPrice, MaxPrice = q.MaxPrice },
        };
        if (!pipeline.TryValidate(request, out string? error)) throw new UserInputException(error!);
        var rankClock = Stopwatch.StartNew();
        var result = pipeline.Rank(request);
        rankClock.Stop();

        var parsed = PriceQueryParser.Parse(q.Query);
        if (parsed.HasPriceFilter)
            log.WriteLine($"query: \"{parsed.Text}\", price {parsed.MinPrice.ToString("0.##", CultureInfo.InvariantCulture)} to {(float.IsPositiveInfinity(parsed.MaxPrice) ? "any" : parsed.MaxPrice.ToString("0.##", CultureInfo.InvariantCulture))}");
        log.WriteLine($"ranked in {rankClock.Elapsed.TotalMilliseconds:F1} ms; model {result.ModelVersion}");

        var products = result.Items.Select(i => i.ProductId).Distinct().ToDictionary(id => id, id => pipeline.Find(id)!);
        return (result, products);
    }

    /// <summary>Turns a corrupt-file error into the one-line bad-input answer.</summary>
    private static T BadData<T>(Func<T> read)
    {
        try { return read(); }
        catch (InvalidDataException e) { throw new UserInputException(e.Message); }
    }

    /// <summary>An encoder and what it runs on; disposing releases the encoder's buffers.</summary>
    private sealed class Encoder(ITextEmbedder embedder) : IDisposable
    {
        public ITextEmbedder Embedder { get; } = embedder;
        public void Dispose() => (Embedder as IDisposable)?.Dispose();
    }

    private static Encoder CreateEmbedder(Request q, IComputeBackend? backend) => q.Embedder switch
    {
        "hash" => new Encoder(new HashingTextEmbedder()),
        _ => new Encoder(MiniLmEncoder.CreateDefault(backend!, q.Precision == "f32" ? EncoderPrecision.F32 : EncoderPrecision.Q8_0, q.CacheDir)),
    };

    /// <summary>A scanner and what it owns (a CPU scanner's threads, an ILGPU device the encoder does not share).</summary>
    internal sealed class ScanBackend(IVectorScanner scanner, int maxCandidates, params IDisposable?[] owned) : IDisposable
    {
        /// <summary>The scanner under the index.</summary>
        public IVectorScanner Scanner { get; } = scanner;

        /// <summary>Most candidates one scan returns (<see cref="IlgpuVectorScanner.MaxK"/> on ILGPU).</summary>
        public int MaxCandidates { get; } = maxCandidates;

        public void Dispose()
        {
            foreach (var o in owned) o?.Dispose();
        }
    }

    /// <summary>
    /// The scan under the index for <paramref name="backend"/>: cpu and reference → the SIMD int8 CPU scanner; ilgpu → the ILGPU
    /// scanner on the CUDA device the encoder runs on (its own device when the encoder is not on one, e.g. <c>--embedder hash</c>),
    /// or, when CUDA is unusable, one line on <paramref name="log"/> and the CPU scanner (as <c>engine generate --backend ilgpu</c>
    /// falls back); ilgpu-cpu → the ILGPU scanner on ILGPU's CPU accelerator (correctness only: ~0.1 GOP/s).
    /// </summary>
    internal static ScanBackend CreateScanner(string backend, int threads, IComputeBackend? compute, TextWriter log)
    {
        switch (backend)
        {
            case "ilgpu":
                if (compute is IlgpuBackend { Device.IsCuda: true } gpu) return Ilgpu(gpu.Device, owned: null);
                if (compute is null)
                {
                    if (IlgpuDevice.TryCreateCuda(out var device, out string reason)) return Ilgpu(device, owned: device);
                    log.WriteLine($"ilgpu: {reason}; scanning on the cpu");
                }
                // Otherwise the encoder already fell back to the cpu backend and said why.
                return Cpu();
            case "ilgpu-cpu":
                if (compute is IlgpuBackend { Device.IsCuda: false } accelerator) return Ilgpu(accelerator.Device, owned: null);
                var cpuDevice = IlgpuDevice.CreateCpu();
                return Ilgpu(cpuDevice, owned: cpuDevice);
            default:
                return Cpu();
        }

        ScanBackend Cpu()
        {
            var cpu = new CpuVectorScanner(threads);
            return new ScanBackend(cpu, int.MaxValue, cpu);
        }

        static ScanBackend Ilgpu(IlgpuDevice device, IDisposable? owned) => new(new IlgpuVectorScanner(device), IlgpuVectorScanner.MaxK, owned);
    }
}
