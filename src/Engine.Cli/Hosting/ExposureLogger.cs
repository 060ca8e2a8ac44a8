using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Control.Sessions;
using Engine.Protocol.Messages;
using Engine.Runtime.Ranking;
using Engine.Server.Handlers;
using Orleans;

namespace Engine.Cli.Hosting;

/// <summary>
/// Logs one <see cref="Exposure"/> per served Recommend (docs/FEEDBACK-LOG.md), off the request path: <see cref="Served"/>
/// only puts a struct in a bounded queue (no JSON, no grain call, never blocks; a full queue drops the exposure and
/// counts it); one background worker gathers the queue for <see cref="DefaultBatchWindow"/> at a time, recomputes the
/// features the heads saw (<see cref="RankingPipeline.ComputeFeatures"/>), writes the context JSON
/// (<see cref="ExposureContext"/>) and sends the batch in ONE call to the silo's exposure pre-aggregator
/// (<see cref="IExposureAggregatorGrain.Record"/>: one session call per customer, no state write per exposure). A customer
/// enrolled in an experiment with a shadow arm also gets that arm's list, ranked here in the background and logged with
/// <see cref="Exposure.Shadow"/> set (never shown).
/// </summary>
/// <remarks>Propensity: the ranking is a deterministic top-k, so each shown product's probability is
/// <see cref="DeterministicPropensity"/> (it was shown with certainty given the context).</remarks>
public sealed class ExposureLogger : IStatsSource, IAsyncDisposable
{
    /// <summary>Exposures waiting at most (about 4 s of traffic at 2,000 Recommend/s): past it, new ones are dropped.</summary>
    public const int DefaultCapacity = 8192;

    /// <summary>Most served lists sent in one call.</summary>
    public const int BatchSize = 256;

    /// <summary>How long the worker gathers exposures after the first one of a batch arrives: about 40 lists per call at
    /// 2,000 Recommends/s, so the call rate stays ~50/s whatever the request rate.</summary>
    public static readonly TimeSpan DefaultBatchWindow = TimeSpan.FromMilliseconds(20);

    /// <summary>The probability logged for every shown product of the deterministic top-k ranking.</summary>
    public const float DeterministicPropensity = 1f;

    /// <summary>Least time between two log lines about drops or failures.</summary>
    public static readonly TimeSpan ReportInterval = TimeSpan.FromSeconds(60);

    private readonly IGrainFactory _grains;
    private readonly IExperimentAssigner? _assigner;
    private readonly Func<string, string, BlendWeights?>? _armBlend;
    private readonly Action<string> _log;
    private readonly Channel<Item> _queue;
    private readonly Task _worker;
    private readonly TimeSpan _batchWindow;
    private long _calls;
    private IExposureAggregatorGrain? _aggregator; // worker thread only
    private readonly Dictionary<(string, string, string), ArmKey> _armKeys = [];
    // One ExposedAction per product (the probability is the constant DeterministicPropensity), shared by every exposure
    // that shows it: a list of 10 costs its array, not 10 more objects in flight. Worker thread only; bounded.
    private readonly Dictionary<string, ExposedAction> _actions = new(StringComparer.Ordinal);
    private const int MaxCachedActions = 200_000;
    // The worker's context writer and its buffer, reset per exposure: a context costs only its UTF-8 copy.
    private readonly ArrayBufferWriter<byte> _contextBuffer = new(4096);
    private readonly Utf8JsonWriter _contextWriter;
    private long _queued, _logged, _shadow, _dropped, _failed, _skipped, _done;
    private long _reportedDropped;
    private DateTime _lastReport = DateTime.MinValue;

    /// <summary>Starts the worker.</summary>
    /// <param name="grains">The control plane.</param>
    /// <param name="assigner">The local experiment assigner (for shadow arms), or null for no shadow logging.</param>
    /// <param name="armBlend">(experiment, arm) → that arm's blend weights for the shadow ranking, or null (the service default).</param>
    /// <param name="log">Where the one-line drop and failure reports go (default stderr).</param>
    /// <param name="capacity">Queue bound.</param>
    /// <param name="batchWindow">How long a batch gathers (default <see cref="DefaultBatchWindow"/>; zero sends what is queued at once).</param>
    public ExposureLogger(IGrainFactory grains, IExperimentAssigner? assigner = null, Func<string, string, BlendWeights?>? armBlend = null,
                          Action<string>? log = null, int capacity = DefaultCapacity, TimeSpan? batchWindow = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _batchWindow = batchWindow ?? DefaultBatchWindow;
        ArgumentOutOfRangeException.ThrowIfLessThan(_batchWindow, TimeSpan.Zero, nameof(batchWindow));
        _grains = grains;
        _assigner = assigner;
        _armBlend = armBlend;
        _log = log ?? Console.Error.WriteLine;
        _queue = Channel.CreateBounded<Item>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // with TryWrite: a full queue refuses, so we count the drop
        });
        _contextWriter = new Utf8JsonWriter(_contextBuffer);
        _worker = Task.Run(RunAsync);
    }

    /// <summary>One served list as the hot path hands it over (references only: nothing is copied or built).</summary>
    private readonly record struct Item(RankingPipeline Pipeline, string Customer, string RecommendationId, RankRequest Request,
                                        RankResult Result, string Arm, DateTimeOffset At);

    /// <summary>
    /// Hot path: queues the exposure of one served list. Never blocks, allocates nothing per call; an anonymous request
    /// (no customer id) has no session to log to and is skipped.
    /// </summary>
    /// <param name="pipeline">The pipeline that ranked it (features are recomputed from it).</param>
    /// <param name="customerId">The shopper.</param>
    /// <param name="recommendationId">The id returned on the wire.</param>
    /// <param name="request">The ranking request.</param>
    /// <param name="result">The ranking's answer (items in shown order, model version).</param>
    /// <param name="arm">The served arm label "experiment/arm", or "" outside experiments.</param>
    public void Served(RankingPipeline pipeline, string customerId, string recommendationId, RankRequest request, RankResult result, string arm)
    {
        if (customerId.Length == 0 || result.Items.Count == 0) { Interlocked.Increment(ref _skipped); return; }
        if (_queue.Writer.TryWrite(new Item(pipeline, customerId, recommendationId, request, result, arm, DateTimeOffset.UtcNow)))
            Interlocked.Increment(ref _queued);
        else
            Interlocked.Increment(ref _dropped);
    }

    /// <summary>False when the environment says ENGINE_EXPOSURES=0: <c>engine serve</c> then logs no exposures
    /// (an A/B switch for measuring their cost; the documented default is on).</summary>
    public static bool EnabledByEnvironment() => Environment.GetEnvironmentVariable("ENGINE_EXPOSURES")?.Trim() != "0";

    /// <summary>Exposures that reached their sessions (shadow ones included).</summary>
    public long Logged => Interlocked.Read(ref _logged);

    /// <summary>Calls made to the exposure pre-aggregator (one per batch).</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Exposures dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Exposures whose grain call failed.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Waits until every exposure queued so far has been sent (or failed); tests and shutdown.</summary>
    public async Task DrainAsync(CancellationToken cancellationToken = default)
    {
        long target = Interlocked.Read(ref _queued);
        while (Interlocked.Read(ref _done) < target && !_worker.IsCompleted)
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        var batch = new List<Item>(BatchSize);
        var exposures = new List<Exposure>(BatchSize * 2);
        float[] features = new float[RankingFeatures.Count * 64]; // [items, features] f32, grown on demand
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Gather: one call per window instead of one per served list.
            if (_batchWindow > TimeSpan.Zero && _queue.Reader.Count < BatchSize)
                await Task.Delay(_batchWindow).ConfigureAwait(false);
            batch.Clear();
            exposures.Clear();
            while (batch.Count < BatchSize && _queue.Reader.TryRead(out Item item)) batch.Add(item);
            foreach (var item in batch)
            {
                try
                {
                    Build(item, exposures, ref features);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Interlocked.Increment(ref _failed);
                    Report($"engine: exposure of {item.RecommendationId} not logged: {e.Message}");
                }
            }
            if (exposures.Count > 0) await SendAsync(exposures).ConfigureAwait(false);
            Interlocked.Add(ref _done, batch.Count);
            ReportDrops();
        }
    }

    /// <summary>Adds the item's exposure (and its shadow arm's, if any) to <paramref name="exposures"/>.</summary>
    private void Build(Item item, List<Exposure> exposures, ref float[] features)
    {
        var (experiment, arm) = SplitArm(item.Arm);
        exposures.Add(Make(item.Pipeline, item.Customer, item.RecommendationId, item.Request, item.Result,
            Key(experiment ?? ArmKey.NoExperiment, arm ?? ArmKey.NoExperiment, item.Result.ModelVersion), item.At, shadow: false, ref features));
        if (experiment is not null && _assigner is not null)
        {
            Assignment a = _assigner.Assign(experiment, item.Customer);
            if (a.ShadowArm is { } shadowArm)
            {
                var request = item.Request with { Blend = _armBlend?.Invoke(experiment, shadowArm) };
                RankResult shadow = item.Pipeline.Rank(request);
                if (shadow.Items.Count > 0)
                {
                    exposures.Add(Make(item.Pipeline, item.Customer, item.RecommendationId + "~shadow", request, shadow,
                        Key(experiment, shadowArm, shadow.ModelVersion), item.At, shadow: true, ref features));
                    Interlocked.Increment(ref _shadow);
                }
            }
        }
    }

    /// <summary>One <see cref="ArmKey"/> instance per (experiment, arm, model version) instead of one per exposure: the
    /// sessions and decision logs hold it for seconds to minutes, and a stats shard's write serializes a shared
    /// instance once. Worker thread only; bounded (cleared past 256 keys, e.g. after many model versions).</summary>
    private ArmKey Key(string experiment, string arm, string modelVersion)
    {
        var key = (experiment, arm, modelVersion);
        if (_armKeys.TryGetValue(key, out var found)) return found;
        if (_armKeys.Count >= 256) _armKeys.Clear();
        return _armKeys[key] = new ArmKey(experiment, arm, modelVersion);
    }

    private Exposure Make(RankingPipeline pipeline, string customer, string id, RankRequest request, RankResult result, ArmKey arm,
                                 DateTimeOffset at, bool shadow, ref float[] features)
    {
        int n = result.Items.Count;
        if (features.Length < n * RankingFeatures.Count) features = new float[n * RankingFeatures.Count];
        Span<float> rows = features.AsSpan(0, n * RankingFeatures.Count);
        pipeline.ComputeFeatures(request, result.Items, rows);
        var actions = new ExposedAction[n];
        for (int i = 0; i < n; i++) actions[i] = Action(result.Items[i].ProductId);
        _contextBuffer.ResetWrittenCount();
        _contextWriter.Reset(_contextBuffer);
        ExposureContext.WriteTo(_contextWriter, rows, n, request);
        // A fresh array per exposure (the session and the stats shard read it after this call returns); UTF-8 as the
        // decision log keeps it, so the shard copies bytes rather than transcoding a string.
        return new Exposure(id, customer, arm, "", actions, at, shadow, ContextUtf8: _contextBuffer.WrittenSpan.ToArray());
    }

    /// <summary>The shared action of showing <paramref name="productId"/> with <see cref="DeterministicPropensity"/>.</summary>
    private ExposedAction Action(string productId)
    {
        if (_actions.TryGetValue(productId, out var found)) return found;
        if (_actions.Count >= MaxCachedActions) _actions.Clear();
        return _actions[productId] = new ExposedAction(productId, DeterministicPropensity);
    }

    /// <summary>"experiment/arm" → (experiment, arm); "" → (null, null).</summary>
    internal static (string? Experiment, string? Arm) SplitArm(string label)
    {
        int slash = label.IndexOf('/');
        return slash <= 0 || slash == label.Length - 1 ? (null, null) : (label[..slash], label[(slash + 1)..]);
    }

    /// <summary>One call for the whole batch; the list is not kept by the callee (it is awaited before reuse).</summary>
    private async Task SendAsync(List<Exposure> exposures)
    {
        int n = exposures.Count;
        Interlocked.Increment(ref _calls);
        try
        {
            int logged = await (_aggregator ??= _grains.GetGrain<IExposureAggregatorGrain>(0)).Record(exposures).ConfigureAwait(false);
            Interlocked.Add(ref _logged, logged);
            if (logged < n)
            {
                Interlocked.Add(ref _failed, n - logged);
                Report($"engine: {n - logged} of {n} exposures not logged (their sessions failed); failures so far: {Failed}");
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Interlocked.Add(ref _failed, n);
            Report($"engine: {n} exposures not logged ({e.GetType().Name}: {e.Message}); failures so far: {Failed}");
        }
    }

    private void ReportDrops()
    {
        long dropped = Dropped;
        if (dropped > _reportedDropped && Report(string.Create(CultureInfo.InvariantCulture,
                $"engine: exposure queue full ({DefaultCapacity} waiting): {dropped - _reportedDropped} exposures dropped (not logged); {dropped} in all")))
            _reportedDropped = dropped;
    }

    /// <summary>Writes one line unless one was written within <see cref="ReportInterval"/>.</summary>
    private bool Report(string line)
    {
        lock (_queue)
        {
            var now = DateTime.UtcNow;
            if (now - _lastReport < ReportInterval) return false;
            _lastReport = now;
        }
        _log(line);
        return true;
    }

    /// <inheritdoc/>
    public void Collect(ICollection<StatEntry> entries)
    {
        entries.Add(new StatEntry { Name = "recommend.exposures_logged", Value = Logged });
        entries.Add(new StatEntry { Name = "recommend.exposures_shadow", Value = Interlocked.Read(ref _shadow) });
        entries.Add(new StatEntry { Name = "recommend.exposures_dropped", Value = Dropped });
        entries.Add(new StatEntry { Name = "recommend.exposures_failed", Value = Failed });
        entries.Add(new StatEntry { Name = "recommend.exposures_anonymous", Value = Interlocked.Read(ref _skipped) });
        entries.Add(new StatEntry { Name = "recommend.exposure_calls", Value = Calls });
    }

    /// <summary>Stops taking exposures and sends the ones queued.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
        await _contextWriter.DisposeAsync().ConfigureAwait(false);
    }
}
