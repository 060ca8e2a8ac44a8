using System.Diagnostics;
using System.Globalization;
using Engine.Core.Backend;
using Engine.Cpu.Vectors;
using Engine.Runtime.Ranking;

namespace Engine.Cli.Bench;

/// <summary>Settings of <c>engine bench rank</c>.</summary>
/// <param name="Items">Products in the index.</param>
/// <param name="Dims">Values per vector (384 for MiniLM).</param>
/// <param name="Batch">Queries per scan.</param>
/// <param name="K">Results per query.</param>
/// <param name="Threads">Scan threads (and bandwidth-probe threads).</param>
/// <param name="Rounds">Timed rounds per batch size, after one warm-up scan.</param>
/// <param name="RecallQueries">Queries whose int8 top k is compared with the exact f32 top k.</param>
/// <param name="Seed">Seed of the synthetic catalog and queries.</param>
/// <param name="RescoreFactor">Candidates per result rescored with the residual layer (<see cref="ProductIndex.RescoreFactor"/>; 0 = none).</param>
internal sealed record RankBenchSettings(int Items, int Dims, int Batch, int K, int Threads, int Rounds = 5, int RecallQueries = 20, int Seed = 42,
    int RescoreFactor = ProductIndex.DefaultRescoreFactor)
{
    /// <summary>Rescore factors whose recall is printed side by side (with the one asked for).</summary>
    public static readonly int[] ComparedFactors = [1, 2, 4, 8];

    /// <summary>Products per cluster of the synthetic catalog (a leaf category of a storefront holds about this many).</summary>
    public const int ItemsPerCluster = 1000;

    /// <summary>A timed round lasts at least this long (several scans where one is short).</summary>
    public const double MinRoundSeconds = 0.5;
}

/// <summary>
/// <c>engine bench rank</c>: builds a <see cref="ProductIndex"/> of synthetic clustered unit vectors on the SIMD CPU
/// scanner, measures queries/s of the two-stage search (int8 scan of k·R candidates, then rescoring with the residual
/// layer) at the requested batch and at batch 1, and of the raw int8 scan at batch 1; recall@k of the raw scan and of
/// the rescored result against an exact f32 scan of the same vectors; and the fraction of the machine's read bandwidth
/// (probed in the same run with the same threads) that the batch-1 search reaches.
/// <para>
/// Catalog model: product embeddings of a storefront cluster by category, and all share a common direction (sentence
/// encoders are anisotropic: MiniLM vectors of unrelated products still have cosine ≈ 0.1–0.2). Each vector is
/// <c>normalize(0.5 g + c_i + 0.8 n)</c> with g the shared direction, c_i its cluster centre (one per
/// <see cref="RankBenchSettings.ItemsPerCluster"/> items) and n noise, all standard Gaussian per value: two products of a
/// cluster have cosine ≈ 0.65, of different clusters ≈ 0.15. Queries (shopper profiles, text queries) are drawn the
/// same way with noise 1.0, as a profile is a blur of several products.
/// </para>
/// </summary>
internal static class RankBenchmark
{
    private const float SharedWeight = 0.5f, ItemNoise = 0.8f, QueryNoise = 1.0f;
    private const int BuildChunk = 8192;

    /// <summary>ε of the ε-recall (ann-benchmarks counts a result within 1e-3 of the k-th true distance as a hit).</summary>
    private const float RecallEpsilon = 1e-3f;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Runs the benchmark; progress to <paramref name="log"/>, results to <paramref name="stdout"/> (the batch-1 bandwidth fraction last).</summary>
    public static void Run(RankBenchSettings s, Func<int, double> probeGBps, TextWriter stdout, Action<string> log)
    {
        using var scanner = new CpuVectorScanner(s.Threads);
        var rng = new Random(s.Seed);
        int clusters = Math.Max(1, s.Items / RankBenchSettings.ItemsPerCluster);
        var shared = Gaussians(rng, s.Dims);
        var centres = Gaussians(rng, clusters * s.Dims);
        var recallQueries = Queries(rng, s.RecallQueries, s, shared, centres, clusters);

        log($"building {s.Items} × {s.Dims} in {clusters} clusters…");
        var sw = Stopwatch.StartNew();
        using var index = new ProductIndex(s.Dims, scanner);
        var exact = Build(index, s, shared, centres, clusters, recallQueries);
        log(string.Create(Inv, $"built in {sw.Elapsed.TotalSeconds:F1} s"));

        log("probing memory bandwidth…");
        double gbps = probeGBps(s.Threads);
        long scanBytes = (long)s.Items * (s.Dims + sizeof(float)); // int8 rows + one f32 scale each

        stdout.WriteLine(string.Create(Inv,
            $"rank: {s.Items} items × {s.Dims} dims int8 ({scanBytes / 1e6:F1} MB per scan), {clusters} clusters, k={s.K}, {s.Threads} thread(s), scanner {scanner.Name}"));
        stdout.WriteLine(string.Create(Inv, $"memory bandwidth: {gbps:F1} GB/s (probe, {s.Threads} thread(s))"));

        // Recall against exact f32 of the same vectors: the raw int8 scan (rescoring off), then k·R candidates rescored.
        var recallFilters = Enumerable.Repeat(ProductFilter.None, s.RecallQueries).ToArray();
        index.RescoreFactor = 0;
        var rawFound = index.SearchBatch(recallQueries, s.K, recallFilters);
        var finalFound = rawFound;
        if (s.RescoreFactor > 0)
        {
            index.RescoreFactor = s.RescoreFactor;
            finalFound = index.SearchBatch(recallQueries, s.K, recallFilters);
        }
        // One regeneration pass for the exact scores of both result sets (it rebuilds every chunk a returned row lies in).
        var exactScores = ExactScores(s, shared, centres, clusters, recallQueries, [rawFound, finalFound]);
        var (recall, epsilonRecall) = Recall(rawFound, exactScores[0]);
        var (finalRecall, finalEpsilon) = Recall(finalFound, exactScores[1]);
        var byFactor = new SortedDictionary<int, double>();
        foreach (int r in RankBenchSettings.ComparedFactors.Append(s.RescoreFactor).Where(r => r > 0).Distinct())
        {
            index.RescoreFactor = r;
            byFactor[r] = Recall(index.SearchBatch(recallQueries, s.K, recallFilters), exactScore: null).Recall;
        }
        index.RescoreFactor = s.RescoreFactor;

        (double Recall, double EpsilonRecall) Recall(IReadOnlyList<SearchHit>[] found, List<float>[]? exactScore)
        {
            double hit = 0;
            for (int q = 0; q < s.RecallQueries; q++)
            {
                var truth = exact[q].Select(t => Id(t.Row)).ToHashSet(StringComparer.Ordinal);
                hit += found[q].Count(h => truth.Contains(h.ProductId));
            }
            double all = s.RecallQueries * (double)Math.Min(s.K, s.Items);
            if (exactScore is null) return (hit / all, double.NaN);
            // ε-recall: a returned product counts when its exact score is within ε of the exact k-th score (a near-tie
            // that int8 rounding may order either way). Needs the exact scores of the returned products.
            double epsilonHit = 0;
            for (int q = 0; q < s.RecallQueries; q++)
            {
                float kth = exact[q][^1].Score;
                epsilonHit += exactScore[q].Count(score => score >= kth - RecallEpsilon);
            }
            return (hit / all, epsilonHit / all);
        }

        var timedQueries = Queries(rng, Math.Max(s.Batch, 16), s, shared, centres, clusters);
        var batches = new List<int> { s.Batch };
        if (s.Batch != 1) batches.Add(1);
        double batch1Best = 0, batch1Median = 0, rawBest = 0, rawMedian = 0;
        string stage = s.RescoreFactor > 0 ? $"int8 scan of k·{s.RescoreFactor} + rescoring" : "int8 scan";
        foreach (int b in batches)
        {
            log($"timing batch {b} ({stage})…");
            var (rounds, perCpuSecond, bestScan) = Time(index, timedQueries, b, s);
            double median = rounds.Order().ElementAt(rounds.Count / 2), best = rounds.Max();
            // With one thread the caller does all the work, so its CPU clock gives the rate a machine to ourselves would allow
            // (a ceiling set by compute and by memory as seen from one core; wall-clock rounds include time lost to other processes).
            string cpu = double.IsNaN(perCpuSecond) ? "" : string.Create(Inv, $", {perCpuSecond:F1} q per CPU-second");
            stdout.WriteLine(string.Create(Inv,
                $"batch {b} ({stage}): rounds {string.Join(" ", rounds.Select(r => r.ToString("F1", Inv)))} q/s; median round {median:F1} q/s ({median * scanBytes / b / 1e9:F1} GB/s), best single scan {bestScan:F1} q/s ({bestScan * scanBytes / b / 1e9:F1} GB/s){cpu}"));
            if (b == 1) { batch1Best = bestScan; batch1Median = median; }
        }
        if (s.RescoreFactor > 0)
        {
            // The raw int8 scan of k alone, for the scan's own bandwidth fraction beside the two-stage search's.
            index.RescoreFactor = 0;
            log("timing batch 1 (int8 scan alone)…");
            var (rounds, perCpuSecond, bestScan) = Time(index, timedQueries, 1, s);
            index.RescoreFactor = s.RescoreFactor;
            rawMedian = rounds.Order().ElementAt(rounds.Count / 2);
            rawBest = bestScan;
            stdout.WriteLine(string.Create(Inv,
                $"batch 1 (int8 scan alone, k={s.K}): rounds {string.Join(" ", rounds.Select(r => r.ToString("F1", Inv)))} q/s; median round {rawMedian:F1} q/s, best single scan {rawBest:F1} q/s ({rawBest * scanBytes / 1e9:F1} GB/s){(double.IsNaN(perCpuSecond) ? "" : $", {perCpuSecond:F1} q per CPU-second")}"));
        }
        if (LoadAverage() is { } load) stdout.WriteLine($"machine: {Environment.ProcessorCount} logical CPUs, load average (1/5/15 min) {load} at the end");
        stdout.WriteLine(string.Create(Inv,
            $"recall@{s.K} of the int8 scan alone (vs exact f32, {s.RecallQueries} queries): {recall:F4}; counting hits within {RecallEpsilon} of the exact {s.K}th score (ann-benchmarks' ε-recall): {epsilonRecall:F4}"));
        stdout.WriteLine(string.Create(Inv,
            $"recall@{s.K} rescoring k·R candidates with the residual layer: {string.Join(", ", byFactor.Select(p => string.Create(Inv, $"R={p.Key} {p.Value:F4}")))}"));
        stdout.WriteLine(string.Create(Inv,
            $"recall@{s.K} of the final result (R={s.RescoreFactor}): {finalRecall:F4}; ε-recall {finalEpsilon:F4}"));
        // The probe keeps its best 32 MiB slice (other processes only ever slow a slice down); the scan is compared
        // the same way, by its best single batch-1 scan, and the median 0.5 s round is given beside it.
        // Bytes counted are the scan's (the rescoring reads k·R residual rows, ~0.02 % of them at 1M).
        double bestGBps = batch1Best * scanBytes / 1e9;
        string raw = s.RescoreFactor > 0 ? string.Create(Inv, $"; int8 scan alone {rawBest * scanBytes / 1e9 / gbps:F2}, median round {rawMedian * scanBytes / 1e9 / gbps:F2}") : "";
        stdout.WriteLine(string.Create(Inv,
            $"bandwidth fraction at batch 1: {bestGBps / gbps:F2} ({stage}: {bestGBps:F1} GB/s of {gbps:F1} GB/s probed; best single scan vs best probe slice; median round {batch1Median * scanBytes / 1e9 / gbps:F2}{raw})"));
    }

    private static string Id(int row) => string.Create(Inv, $"p{row}");

    /// <summary>Queries/s of each timed round at batch <paramref name="b"/>, queries per CPU-second of the calling thread (NaN unless one thread), and queries/s of the fastest single scan.</summary>
    private static (List<double> Rounds, double PerCpuSecond, double BestScan) Time(ProductIndex index, float[] queries, int b, RankBenchSettings s)
    {
        int pool = queries.Length / s.Dims;
        var filters = Enumerable.Repeat(ProductFilter.None, b).ToArray();
        var batch = new float[b * s.Dims];
        int next = 0;
        void Fill()
        {
            for (int i = 0; i < b; i++, next = (next + 1) % pool)
                queries.AsSpan(next * s.Dims, s.Dims).CopyTo(batch.AsSpan(i * s.Dims));
        }
        Fill();
        index.SearchBatch(batch, s.K, filters); // warm-up
        var rounds = new List<double>();
        int total = 0;
        double fastest = double.PositiveInfinity;
        double cpu0 = s.Threads == 1 ? ThreadCpuClock.Now() : double.NaN;
        for (int r = 0; r < s.Rounds; r++)
        {
            int done = 0;
            long start = Stopwatch.GetTimestamp();
            double seconds;
            do
            {
                Fill();
                long scanStart = Stopwatch.GetTimestamp();
                index.SearchBatch(batch, s.K, filters);
                fastest = Math.Min(fastest, Stopwatch.GetElapsedTime(scanStart).TotalSeconds);
                done += b;
                seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            } while (seconds < RankBenchSettings.MinRoundSeconds);
            rounds.Add(done / seconds);
            total += done;
        }
        double cpuSeconds = ThreadCpuClock.Now() - cpu0;
        return (rounds, total / cpuSeconds, b / fastest);
    }

    /// <summary>Fills the index chunk by chunk (chunks generated in parallel, each from its own seed) and returns the exact f32 top k of each recall query.</summary>
    private static List<(int Row, float Score)>[] Build(ProductIndex index, RankBenchSettings s, float[] shared, float[] centres, int clusters, float[] recallQueries)
    {
        int chunks = (s.Items + BuildChunk - 1) / BuildChunk;
        int rq = recallQueries.Length / s.Dims;
        var partial = new List<(int Row, float Score)>[chunks][];
        Parallel.For(0, chunks, c =>
        {
            int start = c * BuildChunk, n = Math.Min(BuildChunk, s.Items - start);
            var vectors = GenerateChunk(s, shared, centres, clusters, c, out var ids, out var facets);
            index.UpsertBatch(ids, vectors, facets);
            var tops = new List<(int Row, float Score)>[rq];
            for (int q = 0; q < rq; q++)
            {
                var query = recallQueries.AsSpan(q * s.Dims, s.Dims);
                var scored = new (int Row, float Score)[n];
                for (int i = 0; i < n; i++)
                    scored[i] = (start + i, Dot(query, vectors.AsSpan(i * s.Dims, s.Dims)));
                tops[q] = scored.OrderByDescending(t => t.Score).ThenBy(t => t.Row).Take(s.K).ToList();
            }
            partial[c] = tops;
        });
        return Enumerable.Range(0, rq)
            .Select(q => partial.SelectMany(p => p[q]).OrderByDescending(t => t.Score).ThenBy(t => t.Row).Take(s.K).ToList())
            .ToArray();
    }

    /// <summary>Exact f32 scores of the returned products of each result set (<c>[set][query][rank]</c>), their vectors regenerated from their chunk's seed.</summary>
    private static List<float>[][] ExactScores(RankBenchSettings s, float[] shared, float[] centres, int clusters, float[] queries, IReadOnlyList<SearchHit>[][] sets)
    {
        var rows = sets.SelectMany(found => found.SelectMany(f => f.Select(h => int.Parse(h.ProductId.AsSpan(1), CultureInfo.InvariantCulture)))).ToHashSet();
        var vectors = new System.Collections.Concurrent.ConcurrentDictionary<int, float[]>();
        Parallel.ForEach(rows.Select(r => r / BuildChunk).Distinct(), c =>
        {
            var chunk = GenerateChunk(s, shared, centres, clusters, c, out _, out _);
            int start = c * BuildChunk;
            foreach (int r in rows.Where(r => r / BuildChunk == c))
                vectors[r] = chunk.AsSpan((r - start) * s.Dims, s.Dims).ToArray();
        });
        return sets.Select(found => found.Select((hits, q) => hits
            .Select(h => Dot(queries.AsSpan(q * s.Dims, s.Dims), vectors[int.Parse(h.ProductId.AsSpan(1), CultureInfo.InvariantCulture)]))
            .ToList()).ToArray()).ToArray();
    }

    /// <summary>Exact f32 dot product (vector lanes, then a horizontal sum).</summary>
    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var acc = System.Numerics.Vector<float>.Zero;
        int j = 0, w = System.Numerics.Vector<float>.Count;
        for (; j + w <= a.Length; j += w) acc += new System.Numerics.Vector<float>(a[j..]) * new System.Numerics.Vector<float>(b[j..]);
        float sum = System.Numerics.Vector.Sum(acc);
        for (; j < a.Length; j++) sum += a[j] * b[j];
        return sum;
    }

    /// <summary>Vectors <c>[n, dims]</c>, ids and facets of build chunk <paramref name="c"/>, the same every time (seeded by chunk).</summary>
    private static float[] GenerateChunk(RankBenchSettings s, float[] shared, float[] centres, int clusters, int c, out string[] ids, out ProductFacets[] facets)
    {
        int start = c * BuildChunk, n = Math.Min(BuildChunk, s.Items - start);
        var rng = new Random(unchecked(s.Seed * 1_000_003 + c)); // not HashCode.Combine: that is randomized per process
        var vectors = new float[n * s.Dims];
        facets = new ProductFacets[n];
        ids = new string[n];
        for (int i = 0; i < n; i++)
        {
            int row = start + i, cluster = row % clusters;
            Member(rng, vectors.AsSpan(i * s.Dims, s.Dims), shared, centres.AsSpan(cluster * s.Dims, s.Dims), ItemNoise);
            facets[i] = new ProductFacets(cluster % 50, MathF.Round((float)(5 + rng.NextDouble() * 195), 2), rng.NextDouble() < 0.9);
            ids[i] = Id(row);
        }
        return vectors;
    }

    private static float[] Queries(Random rng, int n, RankBenchSettings s, float[] shared, float[] centres, int clusters)
    {
        var q = new float[n * s.Dims];
        for (int i = 0; i < n; i++)
            Member(rng, q.AsSpan(i * s.Dims, s.Dims), shared, centres.AsSpan(rng.Next(clusters) * s.Dims, s.Dims), QueryNoise);
        return q;
    }

    /// <summary>normalize(0.5 g + centre + noise · n).</summary>
    private static void Member(Random rng, Span<float> dst, ReadOnlySpan<float> shared, ReadOnlySpan<float> centre, float noise)
    {
        double norm = 0;
        for (int j = 0; j < dst.Length; j++)
        {
            float v = SharedWeight * shared[j] + centre[j] + noise * Gaussian(rng);
            dst[j] = v;
            norm += v * v;
        }
        float inv = (float)(1 / Math.Sqrt(norm));
        for (int j = 0; j < dst.Length; j++) dst[j] *= inv;
    }

    private static float[] Gaussians(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = Gaussian(rng);
        return x;
    }

    private static float Gaussian(Random rng) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    private static string? LoadAverage()
    {
        try { return File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : null; }
        catch (IOException) { return null; }
    }
}
