using System.Diagnostics;
using Engine.Cli.Commands;

namespace Engine.Server.Tests;

/// <summary>The load generator's pacing wait (<see cref="LoadgenPacer"/>): never returns before the scheduled time.</summary>
public sealed class LoadgenPacerTests
{
    [Fact]
    public void Until_returns_at_or_after_the_scheduled_time_and_at_once_for_a_past_one()
    {
        for (int i = 0; i < 20; i++)
        {
            long due = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2000 * (i % 4); // 0 to 1.5 ms ahead
            LoadgenPacer.Until(due);
            Assert.True(Stopwatch.GetTimestamp() >= due, $"returned before the scheduled time (round {i})");
        }
        LoadgenPacer.Until(Stopwatch.GetTimestamp() - Stopwatch.Frequency); // a second late: no wait, no error
        Assert.Equal(OperatingSystem.IsLinux(), LoadgenPacer.IsPrecise);
    }
}
