using Engine.Cli.Commands;
using Engine.Runtime.Ranking;

namespace Engine.Server.Tests;

/// <summary>
/// <c>engine rank --backend</c>: the index scanned by the ILGPU scanner (on ILGPU's CPU accelerator, which runs the same
/// kernels as CUDA) ranks the same products as the SIMD CPU scanner, both rescoring their candidates on the host.
/// </summary>
public sealed class RankCommandBackendTests : IDisposable
{
    /// <summary>Small enough for the ILGPU CPU accelerator (~0.1 GOP/s) to build and scan in about a second.</summary>
    private const int Products = 400;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"rank-backend-{Guid.NewGuid():N}");

    public RankCommandBackendTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A demo catalog file of its own per backend, so each builds its index rather than loading the other's cache.</summary>
    private string CatalogFor(string backend)
    {
        string path = Path.Combine(_dir, backend, "catalog.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        CatalogFile.Write(path, DemoCatalog.Generate(Products, seed: 7));
        return path;
    }

    private static RankCommand.Request Ask(string catalog, string backend, string? query) => new(
        catalog, query, K: 15, Category: null, MinPrice: 0, MaxPrice: float.PositiveInfinity, AllowOutOfStock: false, Heads: null,
        Embedder: "hash", Mode: "composed", Backend: backend, Threads: 2, Precision: "q8_0", CacheDir: null);

    [Theory]
    [InlineData("summer dresses under $50")]
    [InlineData("leather bag")]
    [InlineData(null)]
    public void Ilgpu_scanner_ranks_the_same_products_as_the_cpu_scanner(string? query)
    {
        var log = new StringWriter();
        var cpu = RankCommand.Rank(Ask(CatalogFor("cpu"), "cpu", query), log).Result;
        var ilgpu = RankCommand.Rank(Ask(CatalogFor("ilgpu-cpu"), "ilgpu-cpu", query), log).Result;
        Assert.Contains("scanner: ilgpu-cpu", log.ToString());
        Assert.Contains("scanner: cpu-", log.ToString());
        Assert.NotEmpty(cpu.Items);
        Assert.Equal(cpu.Items.Select(i => i.ProductId), ilgpu.Items.Select(i => i.ProductId));
        // Same rescored similarities up to the scanners' own rounding: both quantize the query to int16 (ILGPU's wide scan
        // uses the SIMD scanner's scheme, with qmax / amax where the CPU takes 1 / scale, so a value may round one step
        // apart) and scale the int32 dots in f32: ~1e-5.
        for (int i = 0; i < cpu.Items.Count; i++) Assert.Equal(cpu.Items[i].Score, ilgpu.Items[i].Score, 1e-3f);
    }
}
