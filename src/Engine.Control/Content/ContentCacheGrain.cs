using Engine.Control.Catalog;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Engine.Control.Content;

/// <summary>Persisted state of a content cache entry.</summary>
[GenerateSerializer]
public sealed class ContentState
{
    /// <summary>Every revision, oldest first.</summary>
    [Id(0)] public List<ContentEntry> History { get; set; } = [];
    /// <summary>Index of the current revision in <see cref="History"/>; -1 before the first.</summary>
    [Id(1)] public int Current { get; set; } = -1;
}

/// <summary>Generated copy for one key. Reentrant so callers arriving during a generation await the
/// same task (generate once) while reads stay answered.</summary>
[Reentrant]
internal sealed class ContentCacheGrain(
    [PersistentState("content", ControlStorage.Name)] IPersistentState<ContentState> state,
    IServiceProvider services, IOptions<ControlOptions> options, TimeProvider time) : Grain, IContentCacheGrain
{
    private Task<ContentEntry>? _generating;
    private ContentKey Key => ContentKey.Parse(this.GetPrimaryKeyString());
    private ContentEntry? Current => state.State.Current >= 0 ? state.State.History[state.State.Current] : null;

    async Task<ContentEntry> IContentCacheGrain.GetOrGenerate(GenerationParameters parameters) =>
        Current ?? await Generation(parameters);

    async Task<ContentEntry> IContentCacheGrain.Regenerate(GenerationParameters parameters) =>
        await Generation(parameters);

    /// <summary>The running generation, or a new one. A run that ended before its first await (it failed at once) is
    /// not kept: its <c>finally</c> ran before the assignment would have, so keeping it would pin the failure.</summary>
    private Task<ContentEntry> Generation(GenerationParameters parameters)
    {
        if (_generating is { } running) return running;
        var task = GenerateAsync(parameters);
        if (!task.IsCompleted) _generating = task;
        return task;
    }

    private async Task<ContentEntry> GenerateAsync(GenerationParameters parameters)
    {
        try
        {
            var key = Key;
            var productGrain = GrainFactory.GetGrain<IProductGrain>(key.ProductId);
            var product = await productGrain.Get() ?? throw new UnknownEntityException($"product '{key.ProductId}' is not in the catalog");
            if (product.Version != key.CatalogVersion)
                throw new UnknownEntityException($"product '{key.ProductId}' is at catalog version {product.Version}, not {key.CatalogVersion}");
            var generator = services.GetService<IContentGenerator>()
                ?? throw new InvalidOperationException("no IContentGenerator is registered on this silo");
            var copy = await generator.GenerateAsync(product, key.Template, key.ModelVersion, parameters, CancellationToken.None);
            var issues = CopyValidator.Validate(copy.Text, product, options.Value.BannedTerms);
            var status = issues.Count == 0 && copy.Confidence >= options.Value.AutoPublishConfidence ? ReviewStatus.AutoPublished : ReviewStatus.PendingReview;
            var entry = new ContentEntry(key, state.State.History.Count + 1, copy.Text, copy.Confidence, issues, status,
                new Attribution(key.ModelVersion, parameters), time.GetUtcNow());
            state.State.History.Add(entry);
            state.State.Current = state.State.History.Count - 1;
            await state.WriteStateAsync();
            var queue = GrainFactory.GetGrain<IReviewQueueGrain>(0);
            if (status == ReviewStatus.PendingReview)
                await queue.Enqueue(new ReviewItem(key, entry.Revision, await productGrain.GetTraffic(), issues));
            else
                await queue.Remove(key);
            return entry;
        }
        finally
        {
            _generating = null;
        }
    }

    Task<ContentEntry?> IContentCacheGrain.Get() => Task.FromResult(Current);

    Task<IReadOnlyList<ContentEntry>> IContentCacheGrain.GetHistory() => Task.FromResult<IReadOnlyList<ContentEntry>>(state.State.History.ToArray());

    async Task<ContentEntry> IContentCacheGrain.Review(bool approve)
    {
        var current = Current ?? throw new UnknownEntityException($"content '{this.GetPrimaryKeyString()}' has no revision to review");
        var reviewed = current with { Status = approve ? ReviewStatus.Approved : ReviewStatus.Rejected };
        state.State.History[state.State.Current] = reviewed;
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<IReviewQueueGrain>(0).Remove(reviewed.Key);
        return reviewed;
    }

    async Task<ContentEntry> IContentCacheGrain.Rollback(int revision)
    {
        var index = state.State.History.FindIndex(e => e.Revision == revision);
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(revision), revision, $"content '{this.GetPrimaryKeyString()}' has no revision {revision}");
        state.State.Current = index;
        await state.WriteStateAsync();
        return state.State.History[index];
    }
}
