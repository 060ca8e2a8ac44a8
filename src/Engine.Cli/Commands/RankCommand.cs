using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Core.Backend;
using Engine.Cpu.Vectors;
using Engine.Runtime.Encoding;
using Engine.Runtime.Ranking;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine rank --catalog F --query T --k 20</c>: ranks a catalog file's products for a search text (or by
/// popularity without one) through the full pipeline (index → scoring heads → business rules) and prints a table
/// (rank, product, title, price, score, reason) on stdout; what was loaded, built and how long it took on stderr.
/// The product vectors are cached beside the catalog (F.index, F.index.json) and rebuilt when the catalog changes.
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
        var backend = new Option<string>("--backend") { Description = "Compute backend of the encoder: cpu, reference, ilgpu or ilgpu-cpu", DefaultValueFactory = _ => "cpu" };
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

    private sealed record Request(
        string Catalog, string? Query, int K, string? Category, float MinPrice, float MaxPrice, bool AllowOutOfStock,
        string? Heads, string Embedder, string Mode, string Backend, int Threads, string Precision, string? CacheDir);

    private static int Run(Request q)
    {
        if (q.K is < 1 or > RankingPipeline.MaxK) throw new UserInputException($"--k {q.K}: must be between 1 and {RankingPipeline.MaxK}");
        if (!(q.MinPrice >= 0) || !(q.MaxPrice >= q.MinPrice)) throw new UserInputException($"--min-price {q.MinPrice} / --max-price {q.MaxPrice}: need 0 ≤ min ≤ max");
        if (q.Threads < 1) throw new UserInputException($"--threads {q.Threads}: must be at least 1");
        if (!File.Exists(q.Catalog)) throw new UserInputException($"--catalog {q.Catalog}: no such file");

        var clock = Stopwatch.StartNew();
        var catalog = BadData(() => CatalogFile.Read(q.Catalog));
        if (catalog.Products.Count == 0) throw new UserInputException($"--catalog {q.Catalog}: the catalog holds no products");
        var headSet = q.Heads is null ? ScoringHeads.Default : BadData(() => ScoringHeads.Load(q.Heads));
        Console.Error.WriteLine($"catalog: {catalog.Products.Count} products, version {catalog.Version} ({clock.Elapsed.TotalSeconds:F1} s)");

        using var compute = q.Embedder == "minilm" ? GenerateCommand.CreateBackend(q.Backend, q.Threads) : null;
        using var encoder = CreateEmbedder(q, compute);
        Console.Error.WriteLine($"encoder: {encoder.Embedder.ModelVersion}{(compute is null ? "" : $" on {compute.Name}")}");
        var mode = q.Mode switch
        {
            "full" => CatalogEmbeddingMode.FullText,
            "composed" => CatalogEmbeddingMode.ComposedAttributes,
            _ => catalog.Products.Count <= AutoFullTextLimit ? CatalogEmbeddingMode.FullText : CatalogEmbeddingMode.ComposedAttributes,
        };
        var build = Stopwatch.StartNew();
        using var scanner = CreateScanner(q.Threads);
        bool rebuilt = false;
        // A bar when the first build may take seconds: MiniLM at ~5 ms a product, or a large composed catalog.
        long work = mode == CatalogEmbeddingMode.FullText ? catalog.Products.Count * 50L : catalog.Products.Count;
        using var productIndex = CatalogCommand.WithProgress($"embedding {catalog.Products.Count} products ({mode})", work,
            progress => CatalogIndex.LoadOrBuild(q.Catalog, catalog, encoder.Embedder, mode, scanner, progress, out rebuilt));
        Console.Error.WriteLine(rebuilt
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
            Console.Error.WriteLine($"query: \"{parsed.Text}\", price {parsed.MinPrice.ToString("0.##", CultureInfo.InvariantCulture)} to {(float.IsPositiveInfinity(parsed.MaxPrice) ? "any" : parsed.MaxPrice.ToString("0.##", CultureInfo.InvariantCulture))}");
        Console.Error.WriteLine($"ranked in {rankClock.Elapsed.TotalMilliseconds:F1} ms; model {result.ModelVersion}");

        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn(new TableColumn("rank").RightAligned()).AddColumn("product").AddColumn("title")
            .AddColumn(new TableColumn("price").RightAligned()).AddColumn(new TableColumn("score").RightAligned()).AddColumn("reason");
        for (int i = 0; i < result.Items.Count; i++)
        {
            var item = result.Items[i];
            var product = pipeline.Find(item.ProductId)!;
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

    /// <summary>The scan under the index: the SIMD int8 CPU scanner (the encoder's --backend does not move the index;
    /// an index on the GPU belongs to `engine serve` with a GPU scanner).</summary>
    private static CpuVectorScanner CreateScanner(int threads) => new(threads);
}
