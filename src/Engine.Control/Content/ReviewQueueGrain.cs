namespace Engine.Control.Content;

/// <summary>Persisted review queue.</summary>
[GenerateSerializer]
public sealed class ReviewQueueState
{
    /// <summary>Content grain key → item.</summary>
    [Id(0)] public Dictionary<string, ReviewItem> Items { get; set; } = [];
}

/// <summary>Copy waiting for a reviewer, busiest product first.</summary>
internal sealed class ReviewQueueGrain(
    [PersistentState("reviews", ControlStorage.Name)] IPersistentState<ReviewQueueState> state) : Grain, IReviewQueueGrain
{
    async Task IReviewQueueGrain.Enqueue(ReviewItem item)
    {
        state.State.Items[item.Key.ToGrainKey()] = item;
        await state.WriteStateAsync();
    }

    async Task IReviewQueueGrain.Remove(ContentKey key)
    {
        if (state.State.Items.Remove(key.ToGrainKey())) await state.WriteStateAsync();
    }

    Task<IReadOnlyList<ReviewItem>> IReviewQueueGrain.Peek(int count) =>
        Task.FromResult<IReadOnlyList<ReviewItem>>(state.State.Items.Values
            .OrderByDescending(i => i.ProductTraffic).ThenBy(i => i.Key.ToGrainKey(), StringComparer.Ordinal)
            .Take(count).ToArray());
}
