using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>Generate (client → server, storefront role): write text, streamed back as GenerateToken frames then GenerateDone.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class GenerateRequest : IRequestBody
{
    /// <inheritdoc/>
    [MemoryPackOrder(0)] public uint TimeoutMs { get; set; }
    /// <summary>The product the text is for (cache key and attribution); may be empty.</summary>
    [MemoryPackOrder(1)] public string ProductId { get; set; } = "";
    /// <summary>Template name ("description", "title", ...); may be empty.</summary>
    [MemoryPackOrder(2)] public string Template { get; set; } = "";
    /// <summary>The prompt text (required).</summary>
    [MemoryPackOrder(3)] public string Prompt { get; set; } = "";
    /// <summary>Most tokens to generate (1..4096).</summary>
    [MemoryPackOrder(4)] public int MaxTokens { get; set; } = 128;
    /// <summary>0 = greedy.</summary>
    [MemoryPackOrder(5)] public float Temperature { get; set; }
    /// <summary>0 = off.</summary>
    [MemoryPackOrder(6)] public int TopK { get; set; }
    /// <summary>1 = off.</summary>
    [MemoryPackOrder(7)] public float TopP { get; set; } = 1f;
    /// <summary>Sampling seed (reproducible text for the same model and parameters).</summary>
    [MemoryPackOrder(8)] public ulong Seed { get; set; }
    /// <summary>False: send no GenerateToken frames, only GenerateDone.</summary>
    [MemoryPackOrder(9)] public bool Stream { get; set; } = true;
}

/// <summary>GenerateToken (server → client): the next piece of text. Sequence numbers start at 0 and have no gaps.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class GenerateToken
{
    /// <summary>0, 1, 2, ... per stream.</summary>
    [MemoryPackOrder(0)] public uint Sequence { get; set; }
    /// <summary>UTF-8 text of one or more tokens (never splits a character).</summary>
    [MemoryPackOrder(1)] public string Text { get; set; } = "";
}

/// <summary>Why generation ended. Explicit and append-only.</summary>
public enum FinishReason : byte
{
    /// <summary>Not said.</summary>
    Unknown = 0,
    /// <summary>The model produced an end-of-generation token.</summary>
    EndOfText = 1,
    /// <summary>A stop sequence matched.</summary>
    StopSequence = 2,
    /// <summary>MaxTokens reached.</summary>
    MaxTokens = 3,
    /// <summary>The context window is full.</summary>
    ContextFull = 4,
}

/// <summary>GenerateDone (server → client, End flag): the whole text and its attribution.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class GenerateDone
{
    /// <summary>The full generated text (the concatenation of the GenerateToken texts).</summary>
    [MemoryPackOrder(0)] public string Text { get; set; } = "";
    /// <summary>Tokens generated.</summary>
    [MemoryPackOrder(1)] public int TokenCount { get; set; }
    /// <summary>Tokens in the prompt.</summary>
    [MemoryPackOrder(2)] public int PromptTokens { get; set; }
    /// <summary><see cref="FinishReason"/>.</summary>
    [MemoryPackOrder(3)] public byte FinishReason { get; set; }
    /// <summary>Model file and quantization that wrote it.</summary>
    [MemoryPackOrder(4)] public string ModelVersion { get; set; } = "";
    /// <summary>The seed used.</summary>
    [MemoryPackOrder(5)] public ulong Seed { get; set; }
    /// <summary>
    /// Product copy (ProductId and Template set): true when the content cache already held the copy, false when it
    /// was generated for this request or for a concurrent identical one this request waited for. False for
    /// uncached generation. Added in the 2026-11-26 revision (see PROTOCOL.md §10).
    /// </summary>
    [MemoryPackOrder(6)] public bool Cached { get; set; }
    /// <summary>Product copy: its revision in the content cache (1, 2, ...); 0 for uncached generation.</summary>
    [MemoryPackOrder(7)] public int Revision { get; set; }
    /// <summary>Product copy: <see cref="CopyReviewStatus"/>; <see cref="CopyReviewStatus.None"/> for uncached generation.</summary>
    [MemoryPackOrder(8)] public byte ReviewStatus { get; set; }
    /// <summary>Product copy: validation findings as "Kind: term" (e.g. "UnsupportedNumber: 42"); empty when valid or uncached.</summary>
    [MemoryPackOrder(9)] public string[] ValidationIssues { get; set; } = [];
}

/// <summary>Review state of cached product copy (<see cref="GenerateDone.ReviewStatus"/>). Explicit and append-only.</summary>
public enum CopyReviewStatus : byte
{
    /// <summary>Not product copy (uncached generation).</summary>
    None = 0,
    /// <summary>Valid and confident enough: published without review.</summary>
    AutoPublished = 1,
    /// <summary>Failed validation or below the confidence threshold: waiting for a reviewer; storefronts should not show it.</summary>
    PendingReview = 2,
    /// <summary>A reviewer approved it.</summary>
    Approved = 3,
    /// <summary>A reviewer rejected it; storefronts should not show it.</summary>
    Rejected = 4,
}
