namespace Engine.Control.Content;

/// <summary>Review state of a piece of copy. Persisted: values explicit and append-only.</summary>
public enum ReviewStatus
{
    /// <summary>Valid and confident enough: served without review.</summary>
    AutoPublished = 1,
    /// <summary>Waiting in the review queue; not served.</summary>
    PendingReview = 2,
    /// <summary>A reviewer approved it: served.</summary>
    Approved = 3,
    /// <summary>A reviewer rejected it: not served.</summary>
    Rejected = 4,
}

/// <summary>Why copy failed validation. Persisted: values explicit and append-only.</summary>
public enum ValidationIssueKind
{
    /// <summary>A banned term appears.</summary>
    BannedTerm = 1,
    /// <summary>A material the product's attributes do not list.</summary>
    UnsupportedMaterial = 2,
    /// <summary>A size the attributes do not list.</summary>
    UnsupportedSize = 3,
    /// <summary>A number that appears nowhere in the product's facts.</summary>
    UnsupportedNumber = 4,
    /// <summary>A feature claim (waterproof, wireless...) the attributes do not support.</summary>
    UnsupportedFeature = 5,
}

/// <summary>One validation finding: its kind and the offending term as it appears in the copy.</summary>
[GenerateSerializer, Immutable]
public sealed record ValidationIssue([property: Id(0)] ValidationIssueKind Kind, [property: Id(1)] string Term);

/// <summary>Sampling parameters of a generation (part of its attribution).</summary>
[GenerateSerializer, Immutable]
public sealed record GenerationParameters(
    [property: Id(0)] float Temperature,
    [property: Id(1)] float TopP,
    [property: Id(2)] int MaxTokens,
    [property: Id(3)] ulong Seed);

/// <summary>What produced a piece of copy: model version, parameters and seed.</summary>
[GenerateSerializer, Immutable]
public sealed record Attribution([property: Id(0)] string ModelVersion, [property: Id(1)] GenerationParameters Parameters);

/// <summary>Copy as the generator returns it, with its confidence in [0, 1].</summary>
[GenerateSerializer, Immutable]
public sealed record GeneratedCopy([property: Id(0)] string Text, [property: Id(1)] float Confidence);

/// <summary>One revision of a cache entry.</summary>
/// <param name="Key">The cache key.</param>
/// <param name="Revision">1 for the first generation, +1 per regeneration.</param>
/// <param name="Text">The copy.</param>
/// <param name="Confidence">Generator confidence in [0, 1].</param>
/// <param name="Issues">Validation findings; empty when valid.</param>
/// <param name="Status">Review status.</param>
/// <param name="Attribution">Model version, parameters, seed.</param>
/// <param name="CreatedAt">When it was generated.</param>
[GenerateSerializer, Immutable]
public sealed record ContentEntry(
    [property: Id(0)] ContentKey Key,
    [property: Id(1)] int Revision,
    [property: Id(2)] string Text,
    [property: Id(3)] float Confidence,
    [property: Id(4)] IReadOnlyList<ValidationIssue> Issues,
    [property: Id(5)] ReviewStatus Status,
    [property: Id(6)] Attribution Attribution,
    [property: Id(7)] DateTimeOffset CreatedAt)
{
    /// <summary>Whether the storefront may show it.</summary>
    public bool Servable => Status is ReviewStatus.AutoPublished or ReviewStatus.Approved;
}
