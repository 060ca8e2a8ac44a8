using System.Diagnostics;
using Engine.Core.Backend;
using Engine.Cpu.Vectors;
using Engine.Runtime.Encoding;
using Engine.Runtime.Ranking;

namespace Engine.Cli.Hosting;

/// <summary>
/// The ranking <c>engine serve</c> runs with no catalog of its own: the seeded demo catalog
/// (<see cref="DemoCatalog.Generate"/>), embedded with the demo fast path
/// (<see cref="CatalogEmbeddingMode.ComposedAttributes"/>: each distinct attribute phrase through the encoder
/// once), indexed on the given scanner, ranked by a <see cref="RankingPipeline"/> with default heads.
/// </summary>
public sealed class DemoRanking : IDisposable
{
    /// <summary>Seed of the demo catalog (DemoCatalog's default), so every server ranks the same products.</summary>
    public const int Seed = 42;

    private DemoRanking(RankingPipeline pipeline, ProductIndex index, TimeSpan buildTime)
    {
        Pipeline = pipeline;
        Index = index;
        BuildTime = buildTime;
    }

    /// <summary>The ranking.</summary>
    public RankingPipeline Pipeline { get; }

    /// <summary>The products' vectors (also what the control plane's sessions build profiles from).</summary>
    public ProductIndex Index { get; }

    /// <summary>How long generating, embedding and indexing took.</summary>
    public TimeSpan BuildTime { get; }

    /// <summary>
    /// Catalogs up to this many bytes of int8 vectors are scanned on the calling thread alone: 10k × 384 B
    /// (3.75 MiB) takes about 0.2 ms of one core, less than waking a second thread and merging its heaps costs
    /// a server answering thousands of Recommends a second. Larger catalogs use every compute thread.
    /// </summary>
    public const long SingleThreadScanBytes = 8L << 20;

    /// <summary>
    /// Worker spin after a scan (µs) before a pool thread sleeps. Scans of a server come one per batch, not
    /// back to back as a decoder's ops do, so a long spin would only burn the core the next request needs.
    /// </summary>
    public const int ScanSpinMicroseconds = 20;

    /// <summary>
    /// <see cref="ProductIndex.RescoreFactor"/> of the Recommend index: the residual layer rescores the scan's own
    /// candidates (a Recommend asks for 100 and re-ranks them with the heads) without widening the scan to 4 × 100.
    /// Measured in process on 10k products (one-off RankBatch loop, CPU time, loaded machine): factor 4 cost 200–330 µs
    /// of CPU per request, factor 1 135–150 µs, factor 0 115–135 µs; the wider candidate list buys recall@100 of the
    /// similarity order, which the heads and rules reorder anyway.
    /// </summary>
    public const int RescoreFactor = 1;

    /// <summary>The scanner for <paramref name="products"/> demo products of MiniLM dimensions (see <see cref="SingleThreadScanBytes"/>).</summary>
    public static CpuVectorScanner CreateScanner(int products, int computeThreads, int dimensions = 384)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(products);
        if (computeThreads <= 0) computeThreads = Environment.ProcessorCount;
        int threads = (long)products * dimensions <= SingleThreadScanBytes ? 1 : computeThreads;
        return new CpuVectorScanner(threads, spinMicroseconds: ScanSpinMicroseconds);
    }

    /// <summary>Builds the demo ranking of <paramref name="products"/> products, scored by <paramref name="heads"/>
    /// (null: <see cref="ScoringHeads.Default"/>; <c>engine serve --heads</c>).</summary>
    public static DemoRanking Build(int products, ITextEmbedder embedder, IVectorScanner scanner, ScoringHeads? heads = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(products);
        long start = Stopwatch.GetTimestamp();
        var catalog = DemoCatalog.Generate(products, Seed);
        float[] vectors = CatalogEmbedder.Embed(catalog, embedder, CatalogEmbeddingMode.ComposedAttributes); // [n, dims] f32
        var index = CatalogIndex.Build(catalog, vectors, embedder.Dimensions, new CategoryVocabulary(catalog), scanner);
        try
        {
            index.RescoreFactor = RescoreFactor;
            var pipeline = new RankingPipeline(catalog, index, embedder, heads, catalogVersion: $"demo-{products}-seed{Seed}");
            return new DemoRanking(pipeline, index, Stopwatch.GetElapsedTime(start));
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Index.Dispose();
}
