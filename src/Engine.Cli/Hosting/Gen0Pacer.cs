namespace Engine.Cli.Hosting;

/// <summary>
/// Keeps the young generation small in <c>engine serve</c>: once <see cref="BudgetBytes"/> have been allocated since the
/// last gen-0 collection, collects gen 0 (a blocking gen-0 collection, as the runtime's own). Why: workstation GC sizes
/// gen 0 from the L3 cache (32 MB on the 2-core benchmark box: ~13 MB between collections), and at 2,000 Recommends/s the
/// objects that outlive a request (held exposures, Orleans calls in flight) accumulate between collections, so each pause
/// grows with the interval: ~10 ms per collection, the tail of the latency (bench/RESULTS.md, seventh session). A 6 MB
/// budget halved each pause for about the same total; with Server GC (engine's runtimeconfig since the eighth session)
/// 4 MB measured best. Server GC sizes gen 0 larger still, so the pacer matters more there. The runtime's knob for this (<c>DOTNET_GCgen0size</c>) is read
/// from the environment only (not from runtimeconfig.json); when it is set this pacer stays off.
/// </summary>
public sealed class Gen0Pacer : IDisposable
{
    /// <summary>The default budget (<c>engine serve --gen0-budget-mb</c>), chosen by measurement.</summary>
    public const int DefaultBudgetMegabytes = 4;

    private readonly Thread _thread;
    private volatile bool _stop;
    private long _induced;

    /// <summary>Starts pacing with <paramref name="budgetBytes"/> (≥ 1 MB) between gen-0 collections, checked every
    /// <paramref name="period"/> (default 2 ms).</summary>
    public Gen0Pacer(long budgetBytes, TimeSpan? period = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(budgetBytes, 1L << 20);
        BudgetBytes = budgetBytes;
        var sleep = period ?? TimeSpan.FromMilliseconds(2);
        _thread = new Thread(() => Run(sleep)) { IsBackground = true, Name = "gen0-pacer", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    /// <summary>Bytes allocated between gen-0 collections, at most.</summary>
    public long BudgetBytes { get; }

    /// <summary>Gen-0 collections this pacer started.</summary>
    public long Induced => Interlocked.Read(ref _induced);

    /// <summary>True when the environment already sizes gen 0 (<c>DOTNET_GCgen0size</c> / <c>COMPlus_GCgen0size</c>).</summary>
    public static bool RuntimeSizesGen0() =>
        !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("DOTNET_GCgen0size"))
        || !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("COMPlus_GCgen0size"));

    private void Run(TimeSpan sleep)
    {
        int collections = GC.CollectionCount(0);
        long since = GC.GetTotalAllocatedBytes(precise: false);
        while (!_stop)
        {
            Thread.Sleep(sleep);
            long allocated = GC.GetTotalAllocatedBytes(precise: false);
            int now = GC.CollectionCount(0);
            if (now != collections) { collections = now; since = allocated; continue; } // the runtime collected: count from there
            if (allocated - since < BudgetBytes) continue;
            GC.Collect(0, GCCollectionMode.Forced, blocking: true);
            Interlocked.Increment(ref _induced);
            collections = GC.CollectionCount(0);
            since = GC.GetTotalAllocatedBytes(precise: false);
        }
    }

    /// <summary>Stops the pacer (the runtime's own budget applies again).</summary>
    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}
