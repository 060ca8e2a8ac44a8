using Engine.Cli.Hosting;

namespace Engine.Server.Tests;

/// <summary><see cref="Gen0Pacer"/> (engine serve --gen0-budget-mb): gen 0 is collected once the budget is allocated,
/// far more often than the runtime's own budget (~13 MB on the benchmark box) would.</summary>
[Collection(AllocationCollection.Name)] // its collections would disturb the process-wide allocation counts of that collection's tests
public class Gen0PacerTests
{
    [Fact]
    public void Allocating_past_the_budget_collects_gen0_and_stopping_ends_it()
    {
        using var pacer = new Gen0Pacer(1L << 20, TimeSpan.FromMilliseconds(1));
        // 40 MB allocated slowly (1 MB per 5 ms): the pacer sees each megabyte go by.
        object keep = new();
        for (int mb = 0; mb < 40; mb++)
        {
            for (int i = 0; i < 1024; i++) keep = new byte[1000];
            Thread.Sleep(5);
        }
        GC.KeepAlive(keep);
        Assert.True(pacer.Induced >= 10, $"{pacer.Induced} gen-0 collections started for 40 MB at a 1 MB budget");
        pacer.Dispose();
        long after = pacer.Induced;
        for (int i = 0; i < 4096; i++) keep = new byte[1000];
        Thread.Sleep(20);
        Assert.Equal(after, pacer.Induced);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Gen0Pacer(1000));
    }
}
