using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>Exposure signals leave the silo's feedback buffer once <see cref="FeedbackBuffer.ExposuresPerFlush"/> of them
/// are buffered, and once the exposure pre-aggregator's batch is applied, whatever the flush interval: they carry contexts
/// and lists that should die young (own silo: the flush interval here is an hour, so only the early flushes can deliver
/// them).</summary>
public sealed class ExposureFlushTests : OwnSiloTests<ExposureFlushTests.Configurator>
{
    [Fact]
    public void The_buffer_reports_signals_and_exposures_and_a_drain_empties_both()
    {
        var buffer = new FeedbackBuffer();
        var arm = ArmKey.Unassigned("m1");
        Assert.Equal(new FeedbackBuffer.Fill(2, 1), buffer.Add([new(arm, FeedbackKind.Exposure, "r1"), new(arm, FeedbackKind.Click, "r1", "p")], 0, []));
        Assert.Equal(new FeedbackBuffer.Fill(4, 2), buffer.Add([new(arm, FeedbackKind.Assignment, "r2"), new(arm, FeedbackKind.Exposure, "r2")], 1, ["p"]));
        Assert.Equal(4, buffer.Drain().Signals.Count);
        Assert.Equal(new FeedbackBuffer.Fill(1, 1), buffer.Add([new(arm, FeedbackKind.Exposure, "r3")], 0, []));
    }

    [Fact]
    public async Task A_full_batch_of_exposures_reaches_the_decision_log_without_waiting_for_the_flush_interval()
    {
        var model = "m-" + Guid.NewGuid().ToString("N");
        var arm = ArmKey.Unassigned(model);
        var exposures = Enumerable.Range(0, FeedbackBuffer.ExposuresPerFlush)
            .Select(i => new Exposure($"rec-{model}-{i}", $"c-{model}-{i % 16}", arm, "", [new ExposedAction("p", 1f)], DateTimeOffset.UtcNow,
                ContextUtf8: System.Text.Encoding.UTF8.GetBytes($"{{\"i\":{i}}}")))
            .ToList();
        Assert.Equal(exposures.Count, await Cluster.Client.GetGrain<IExposureAggregatorGrain>(0).Record(exposures));

        IReadOnlyList<LoggedDecision> logged = [];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (logged.Count < exposures.Count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            logged = await Cluster.Client.GetGrain<IExperimentGrain>(ArmKey.NoExperiment).ExportDecisions(null, 10_000)
                is var all ? all.Where(d => d.Arm.ModelVersion == model).ToList() : [];
        }
        Assert.Equal(exposures.Count, logged.Count);
        Assert.Equal(exposures.Select((_, i) => $"{{\"i\":{i}}}").Order(), logged.Select(d => d.Context).Order());
    }

    [Fact]
    public async Task A_small_batch_reaches_the_decision_log_once_its_sessions_applied_it_without_waiting_for_the_flush_interval()
    {
        var model = "m-" + Guid.NewGuid().ToString("N");
        var arm = ArmKey.Unassigned(model);
        var exposures = Enumerable.Range(0, 3) // far below ExposuresPerFlush: only the aggregator's flush request delivers them
            .Select(i => new Exposure($"rec-{model}-{i}", $"c-{model}-{i}", arm, "", [new ExposedAction("p", 1f)], DateTimeOffset.UtcNow,
                ContextUtf8: System.Text.Encoding.UTF8.GetBytes($"{{\"i\":{i}}}")))
            .ToList();
        Assert.Equal(3, await Cluster.Client.GetGrain<IExposureAggregatorGrain>(0).Record(exposures));

        IReadOnlyList<LoggedDecision> logged = [];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (logged.Count < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            logged = await Cluster.Client.GetGrain<IExperimentGrain>(ArmKey.NoExperiment).ExportDecisions(null, 10_000)
                is var all ? all.Where(d => d.Arm.ModelVersion == model).ToList() : [];
        }
        Assert.Equal(["{\"i\":0}", "{\"i\":1}", "{\"i\":2}"], logged.Select(d => d.Context).Order());
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.AddMemoryGrainStorage(ControlStorage.Name);
            silo.Services.AddControlServices(o => o.FeedbackFlushInterval = TimeSpan.FromHours(1));
        }
    }
}
