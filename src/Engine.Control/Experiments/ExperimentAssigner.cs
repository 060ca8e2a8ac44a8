using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Engine.Control.Experiments;

/// <summary>A server's local copy of every experiment config: pushed by the registry, re-read and
/// re-subscribed on a timer (a push lost with a registry failover is picked up then). Assignment is
/// <see cref="ExperimentAssignment.Assign"/> on the local copy: no grain call per request.</summary>
public sealed class ExperimentAssigner(IGrainFactory grains, ILogger<ExperimentAssigner> log)
    : IExperimentAssigner, IExperimentObserver, IHostedService, IAsyncDisposable
{
    /// <summary>How often the assigner re-reads the registry and renews its subscription; well
    /// under the registry's subscription lifetime.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(30);

    private volatile ExperimentSnapshot _snapshot = new(0, new Dictionary<string, ExperimentConfig>());
    private readonly Lock _gate = new();
    private volatile ExperimentConfig[] _configs = []; // _snapshot's configs, for AssignAll's loop (set with it)
    private IExperimentObserver? _reference;
    private CancellationTokenSource? _stop;
    private Task? _loop;

    /// <inheritdoc />
    public long Version => _snapshot.Version;

    /// <inheritdoc />
    public Assignment Assign(string experimentId, string customerId) =>
        _snapshot.Experiments.TryGetValue(experimentId, out var config)
            ? ExperimentAssignment.Assign(config, customerId)
            : throw new UnknownEntityException($"experiment '{experimentId}' is not configured (config version {Version})");

    /// <inheritdoc />
    /// <remarks>Called per Recommend: a loop over an array (no delegate, iterator or enumerator per call), and no
    /// allocation at all while no experiment is configured.</remarks>
    public IReadOnlyList<Assignment> AssignAll(string customerId)
    {
        var configs = _configs;
        List<Assignment>? enrolled = null;
        foreach (var config in configs)
        {
            var a = ExperimentAssignment.Assign(config, customerId);
            if (a.Enrolled) (enrolled ??= new List<Assignment>(configs.Length)).Add(a);
        }
        return enrolled is null ? [] : enrolled;
    }

    /// <inheritdoc />
    public void OnExperimentsChanged(ExperimentSnapshot snapshot)
    {
        // Pushes can arrive out of order: keep the newest.
        lock (_gate)
        {
            if (snapshot.Version <= _snapshot.Version) return;
            _configs = [.. snapshot.Experiments.Values];
            _snapshot = snapshot;
        }
    }

    /// <summary>Reads the registry and renews the push subscription now.</summary>
    public async Task RefreshAsync()
    {
        var registry = grains.GetGrain<IExperimentRegistryGrain>(0);
        _reference ??= grains.CreateObjectReference<IExperimentObserver>(this);
        await registry.Subscribe(_reference);
        OnExperimentsChanged(await registry.GetSnapshot());
    }

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The silo may still be starting: a failed first read is retried by the loop.
        try { await RefreshAsync(); }
        catch (Exception ex) { log.LogWarning(ex, "experiment configs not read at start; retrying every {Interval}", RefreshInterval); }
        _stop = new CancellationTokenSource();
        _loop = RefreshLoop(_stop.Token);
    }

    private async Task RefreshLoop(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(RefreshInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try { await RefreshAsync(); }
                catch (Exception ex) when (ex is not OperationCanceledException) { log.LogWarning(ex, "experiment config refresh failed; assigning from version {Version}", Version); }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stop?.Cancel();
        if (_loop is not null) await _loop;
        if (_reference is not null)
        {
            try { await grains.GetGrain<IExperimentRegistryGrain>(0).Unsubscribe(_reference); } catch (Exception ex) { log.LogDebug(ex, "unsubscribe failed at shutdown"); }
            grains.DeleteObjectReference<IExperimentObserver>(_reference);
            _reference = null;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None);
}
