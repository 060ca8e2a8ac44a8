using Engine.Control.Catalog;

namespace Engine.Control.Content;

/// <summary>Generated copy for one <see cref="ContentKey"/> (key: <see cref="ContentKey.ToGrainKey"/>).
/// Concurrent requests for one key generate once.</summary>
public interface IContentCacheGrain : IGrainWithStringKey
{
    /// <summary>The current revision, generating it first when there is none. Callers that arrive
    /// while a generation runs wait for that one.</summary>
    /// <exception cref="UnknownEntityException">The product is not in the catalog.</exception>
    Task<ContentEntry> GetOrGenerate(GenerationParameters parameters);

    /// <summary>Generates a new revision even if one exists (it becomes current).</summary>
    Task<ContentEntry> Regenerate(GenerationParameters parameters);

    /// <summary>The current revision, or null before the first generation.</summary>
    Task<ContentEntry?> Get();

    /// <summary>Every revision, oldest first.</summary>
    Task<IReadOnlyList<ContentEntry>> GetHistory();

    /// <summary>Sets the current revision's review status (approve or reject).</summary>
    Task<ContentEntry> Review(bool approve);

    /// <summary>Makes an earlier revision current again.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No such revision.</exception>
    Task<ContentEntry> Rollback(int revision);
}

/// <summary>Writes copy for a product: the runtime's generator, wired by the host. Called on the
/// silo inside the content cache grain.</summary>
public interface IContentGenerator
{
    /// <summary>Generates copy for <paramref name="product"/> with <paramref name="template"/>.</summary>
    Task<GeneratedCopy> GenerateAsync(ProductInfo product, string template, string modelVersion, GenerationParameters parameters, CancellationToken cancellationToken);
}

/// <summary>One entry waiting for review.</summary>
[GenerateSerializer, Immutable]
public sealed record ReviewItem(
    [property: Id(0)] ContentKey Key,
    [property: Id(1)] int Revision,
    [property: Id(2)] long ProductTraffic,
    [property: Id(3)] IReadOnlyList<ValidationIssue> Issues);

/// <summary>The review queue (key 0), ordered by product traffic, busiest first.</summary>
public interface IReviewQueueGrain : IGrainWithIntegerKey
{
    /// <summary>Adds or replaces the item for its key.</summary>
    Task Enqueue(ReviewItem item);

    /// <summary>Removes the item for <paramref name="key"/> (reviewed).</summary>
    Task Remove(ContentKey key);

    /// <summary>The first <paramref name="count"/> items, busiest product first.</summary>
    Task<IReadOnlyList<ReviewItem>> Peek(int count);
}
