using System.Globalization;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Runtime.Ranking;
using Engine.Server;
using Engine.Server.Handlers;

namespace Engine.Cli.Hosting;

/// <summary>Where the shopper's profile vector comes from (the control plane's session grain in <c>engine serve</c>).</summary>
public interface IShopperProfiles
{
    /// <summary>The shopper's profile vector <c>[dims]</c> f32, or null when the shopper has none yet.</summary>
    ValueTask<float[]?> GetAsync(string customerId, CancellationToken cancellationToken);
}

/// <summary>The experiment arm served to a shopper: its label ("experiment/arm", "" for none) and its blend weights (null: the service default).</summary>
/// <param name="Label">What the wire's <see cref="RecommendResult.ExperimentArm"/> says.</param>
/// <param name="Blend">The arm's blend weights, or null.</param>
public readonly record struct ArmServing(string Label, BlendWeights? Blend);

/// <summary>
/// Recommend over the real ranking (issue 4's <see cref="RankingPipeline"/>): each request is enriched
/// on its own connection's task (the shopper's profile vector from <see cref="IShopperProfiles"/>, the
/// experiment arm from a local assignment), then queued in a <see cref="MicroBatcher{TItem, TResult}"/>
/// so requests that arrive while a scan runs share the next <see cref="RankingPipeline.RankBatch"/>: one
/// encoder call for their query texts and one index scan for all of them. Mapping: Category → the
/// pipeline's category (by name), InStockOnly → <see cref="ProductFilter.InStockOnly"/>, Query → the query
/// text (embedded; price and category words in it become filters), each item's reason → the wire's
/// <see cref="RecommendedItem.Reason"/>. An invalid request (say a query too long) fails alone with
/// InvalidArgument; its batch neighbours are answered.
/// </summary>
public sealed class RankingRecommendHandler : IRecommendHandler, IStatsSource, IAsyncDisposable
{
    /// <summary>
    /// Longest wait for a profile before ranking without one: a slow session read must not hold the
    /// request past its latency target (10 ms p99, issue 5), and a cold shopper is still served.
    /// </summary>
    public static readonly TimeSpan ProfileBudget = TimeSpan.FromMilliseconds(5);

    private static readonly ProductFilter InStock = new() { InStockOnly = true };

    private readonly RankingPipeline _pipeline;
    private readonly IShopperProfiles? _profiles;
    private readonly Func<string, ArmServing>? _arms;
    private readonly MicroBatcher<Work, RecommendResult> _batcher;
    private readonly string _idPrefix = Guid.NewGuid().ToString("N")[..8]; // recommendation ids unique across restarts
    private long _recommendations, _withProfile, _profileMisses;

    /// <summary>Starts the batcher.</summary>
    /// <param name="pipeline">The ranking.</param>
    /// <param name="profiles">Profile vectors, or null to rank without (popularity and query text only).</param>
    /// <param name="armOf">The served experiment arm's label for a customer ("" when none), or null.</param>
    /// <param name="options">Batching limits, or null for defaults.</param>
    public RankingRecommendHandler(RankingPipeline pipeline, IShopperProfiles? profiles = null, Func<string, string>? armOf = null, MicroBatcherOptions? options = null)
        : this(pipeline, profiles, armOf is null ? null : customer => new ArmServing(armOf(customer), null), options)
    {
    }

    /// <summary>Starts the batcher; each shopper is ranked with the blend weights of the experiment arm served to them.</summary>
    /// <param name="pipeline">The ranking.</param>
    /// <param name="profiles">Profile vectors (a <see cref="ShopperProfileCache"/> in <c>engine serve</c>), or null to rank without.</param>
    /// <param name="arms">The served arm of a customer with its blend weights (<see cref="ExperimentArms.Serving"/>), or null for none.</param>
    /// <param name="options">Batching limits, or null for defaults.</param>
    public RankingRecommendHandler(RankingPipeline pipeline, IShopperProfiles? profiles, Func<string, ArmServing>? arms, MicroBatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _profiles = profiles;
        _arms = arms;
        _batcher = new MicroBatcher<Work, RecommendResult>(RankBatch, options, "recommend");
    }

    /// <summary>Where each served list's exposure is logged (off the request path; docs/FEEDBACK-LOG.md), or null for none.</summary>
    public ExposureLogger? Exposures { get; init; }

    /// <summary>The batcher's counters (scans, requests, largest batch).</summary>
    public MicroBatcher<Work, RecommendResult> Batcher => _batcher;

    /// <inheritdoc/>
    // Pooled state machines: the server and the batcher await each call exactly once, so its box can be reused.
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken)
    {
        float[]? profile = null;
        string customer = request.CustomerId ?? "";
        if (_profiles is not null && customer.Length > 0)
        {
            try
            {
                ValueTask<float[]?> read = _profiles.GetAsync(customer, cancellationToken);
                // A cached profile (ShopperProfileCache) is answered synchronously: no task, no timer.
                profile = read.IsCompletedSuccessfully ? read.Result
                    : await read.AsTask().WaitAsync(ProfileBudget, cancellationToken).ConfigureAwait(false);
                if (profile is { Length: 0 } || (profile is not null && profile.Length != _pipeline.Dimensions)) profile = null;
            }
            catch (TimeoutException)
            {
                Interlocked.Increment(ref _profileMisses); // slow session read: rank without a profile
            }
            catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
            {
                Interlocked.Increment(ref _profileMisses); // failing session read: rank without a profile
            }
        }
        if (profile is not null) Interlocked.Increment(ref _withProfile);
        ArmServing arm = customer.Length > 0 && _arms is not null ? _arms(customer) : default;
        var rank = new RankRequest
        {
            Blend = arm.Blend,
            ProfileVector = profile,
            QueryText = string.IsNullOrWhiteSpace(request.Query) ? null : request.Query,
            K = request.K,
            Filter = request.InStockOnly ? InStock : ProductFilter.None,
            Category = string.IsNullOrWhiteSpace(request.Category) ? null : request.Category,
        };
        return await _batcher.SubmitAsync(new Work(rank, arm.Label ?? "", customer), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One enriched request waiting for its batch.</summary>
    public sealed record Work(RankRequest Request, string Arm, string Customer = "");

    private BatchAnswer<RecommendResult>[] RankBatch(IReadOnlyList<Work> items)
    {
        var answers = new BatchAnswer<RecommendResult>[items.Count];
        var valid = new List<RankRequest>(items.Count);
        var at = new List<int>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            if (_pipeline.TryValidate(items[i].Request, out string? error)) { valid.Add(items[i].Request); at.Add(i); }
            else answers[i] = BatchAnswer<RecommendResult>.Fail(new ProtocolException(ErrorCode.InvalidArgument, error ?? "invalid request"));
        }
        if (valid.Count == 0) return answers;
        RankResult[] ranked = _pipeline.RankBatch(valid);
        for (int j = 0; j < ranked.Length; j++)
        {
            var items2 = new RecommendedItem[ranked[j].Items.Count];
            for (int r = 0; r < items2.Length; r++)
            {
                RankedItem item = ranked[j].Items[r];
                items2[r] = new RecommendedItem { ProductId = item.ProductId, Score = item.Score, Reason = item.Reason };
            }
            string id = string.Create(CultureInfo.InvariantCulture, $"rec-{_idPrefix}-{Interlocked.Increment(ref _recommendations)}");
            answers[at[j]] = new RecommendResult
            {
                RecommendationId = id,
                Items = items2,
                ExperimentArm = items[at[j]].Arm,
                ModelVersion = ranked[j].ModelVersion,
            };
            Exposures?.Served(_pipeline, items[at[j]].Customer, id, valid[j], ranked[j], items[at[j]].Arm);
        }
        return answers;
    }

    /// <inheritdoc/>
    public void Collect(ICollection<StatEntry> entries)
    {
        _batcher.Collect(entries);
        if (_profiles is IStatsSource cache) cache.Collect(entries);
        entries.Add(new StatEntry { Name = "recommend.with_profile", Value = Interlocked.Read(ref _withProfile) });
        entries.Add(new StatEntry { Name = "recommend.profile_misses", Value = Interlocked.Read(ref _profileMisses) });
        ProcessGcStats.Collect(entries); // allocation and collection counts per Recommend (bench/recommend-pair.sh)
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => _batcher.DisposeAsync();
}
