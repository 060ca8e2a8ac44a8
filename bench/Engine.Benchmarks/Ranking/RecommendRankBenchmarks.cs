using BenchmarkDotNet.Attributes;
using Engine.Cpu.Vectors;
using Engine.Runtime.Ranking;

namespace Engine.Benchmarks.Ranking;

/// <summary>
/// The ranking share of one served Recommend, in process: <see cref="RankingPipeline.RankBatch"/> over the 10k-product
/// demo catalog (hashed bag-of-words vectors, 384 dims, as <c>engine serve --demo-catalog 10000</c> but without the
/// encoder) on the single-thread CPU scanner the server uses at this size, for profile requests of K = 10 (100
/// candidates scanned, scored by the heads, rules, reasons). One op = one batch of <see cref="Batch"/> requests (one
/// scan): divide by the batch for the cost per request.
/// <see cref="RescoreFactor"/> is the index's two-stage factor (serve's demo index uses 1; the index default is <see cref="ProductIndex.DefaultRescoreFactor"/>, 2).
/// Run: <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*RecommendRank*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class RecommendRankBenchmarks
{
    private const int Products = 10_000;
    private CpuVectorScanner _scanner = null!;
    private ProductIndex _index = null!;
    private RankingPipeline _pipeline = null!;
    private RankRequest[] _requests = [];

    [Params(1, 4)]
    public int Batch { get; set; }

    [Params(0, 1, 4)]
    public int RescoreFactor { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var catalog = DemoCatalog.Generate(Products);
        var embedder = new HashingTextEmbedder();
        float[] vectors = CatalogEmbedder.Embed(catalog, embedder, CatalogEmbeddingMode.ComposedAttributes); // [n, 384] f32
        _scanner = new CpuVectorScanner(threads: 1);
        _index = CatalogIndex.Build(catalog, vectors, embedder.Dimensions, new CategoryVocabulary(catalog), _scanner);
        _index.RescoreFactor = RescoreFactor;
        _pipeline = new RankingPipeline(catalog, _index, embedder, catalogVersion: "bench");
        var random = new Random(1);
        _requests = new RankRequest[Batch];
        for (int i = 0; i < Batch; i++)
        {
            // A shopper's profile: the sum of three viewed products' vectors.
            var profile = new float[embedder.Dimensions];
            for (int v = 0; v < 3; v++)
            {
                int p = random.Next(Products);
                for (int d = 0; d < profile.Length; d++) profile[d] += vectors[p * embedder.Dimensions + d];
            }
            _requests[i] = new RankRequest { ProfileVector = profile, K = 10 };
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _index.Dispose();
        _scanner.Dispose();
    }

    /// <summary>Ranks the batch (one op).</summary>
    [Benchmark]
    public int RankBatch()
    {
        RankResult[] results = _pipeline.RankBatch(_requests);
        return results[^1].Items.Count;
    }
}
