using System.Text;
using Engine.Control;
using Engine.Control.Catalog;
using Engine.Control.Content;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Runtime.Generation;
using Engine.Runtime.Sampling;
using Engine.Runtime.Scheduling;
using Engine.Server;
using Engine.Server.Handlers;

namespace Engine.Cli.Commands;

/// <summary>
/// Host glue between the protocol's Generate and the runtime's <see cref="GenerationScheduler"/>
/// (Runtime knows nothing of the protocol, so the host translates): request → options, pieces →
/// token frames, scheduler overload → Overloaded, its figures → Stats. With <paramref name="grains"/>, a request
/// that names a product and a template is product copy and goes through the control plane's content cache
/// (<see cref="IContentCacheGrain"/>, keyed by product, template, <paramref name="modelVersion"/> and the product's
/// catalog version): a hit answers the stored copy, a miss generates once (through the silo's
/// <see cref="Engine.Cli.Hosting.SchedulerContentGenerator"/> on this same scheduler) while identical concurrent requests wait for it.
/// </summary>
internal sealed class SchedulerGenerateHandler(GenerationScheduler scheduler, string modelVersion, Orleans.IGrainFactory? grains = null) : IGenerateHandler, IStatsSource
{
    private long _copyHits, _copyMisses;

    public Task<GenerateDone> GenerateAsync(GenerateRequest request, ITokenSink tokens, CancellationToken cancellationToken) =>
        grains is not null && request.ProductId.Length > 0 && request.Template.Length > 0
            ? ProductCopyAsync(grains, request, tokens, cancellationToken)
            : GenerateUncachedAsync(request, tokens, cancellationToken);

    /// <summary>Product copy through the content cache (see the class remarks and PROTOCOL.md, Generate).</summary>
    private async Task<GenerateDone> ProductCopyAsync(Orleans.IGrainFactory grains, GenerateRequest request, ITokenSink tokens, CancellationToken cancellationToken)
    {
        ProductInfo product = await grains.GetGrain<IProductGrain>(request.ProductId).Get().WaitAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new ProtocolException(ErrorCode.NotFound,
                $"product '{request.ProductId}' is not in the catalog (upsert it first, or leave ProductId or Template empty for uncached generation from the prompt)");
        string grainKey;
        try
        {
            grainKey = new ContentKey(request.ProductId, request.Template, modelVersion, product.Version).ToGrainKey();
        }
        catch (ArgumentException e)
        {
            throw new ProtocolException(ErrorCode.InvalidArgument, e.Message);
        }
        var cache = grains.GetGrain<IContentCacheGrain>(grainKey);
        var parameters = new GenerationParameters(request.Temperature, request.TopP is > 0 and <= 1 ? request.TopP : 1f, request.MaxTokens,
            request.Seed != 0 ? request.Seed : SeedOf(grainKey));
        ContentEntry? entry = await cache.Get().WaitAsync(cancellationToken).ConfigureAwait(false);
        bool cached = entry is not null;
        if (entry is null)
        {
            try
            {
                // The grain's call outlives a cancelled request: the copy still lands in the cache for the next one.
                entry = await cache.GetOrGenerate(parameters).WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (SchedulerOverloadedException e)
            {
                throw new ServerOverloadedException(e.Message, e.RetryAfter);
            }
            catch (UnknownEntityException e)
            {
                // The product changed or vanished between the version read above and the generation.
                throw new ProtocolException(ErrorCode.NotFound, e.Message);
            }
        }
        if (cached) Interlocked.Increment(ref _copyHits);
        else Interlocked.Increment(ref _copyMisses);
        if (request.Stream && entry.Text.Length > 0) await tokens.WriteAsync(entry.Text, cancellationToken).ConfigureAwait(false);
        return new GenerateDone
        {
            Text = entry.Text,
            ModelVersion = entry.Attribution.ModelVersion,
            Seed = entry.Attribution.Parameters.Seed,
            Cached = cached,
            Revision = entry.Revision,
            ReviewStatus = (byte)(entry.Status switch
            {
                Control.Content.ReviewStatus.AutoPublished => CopyReviewStatus.AutoPublished,
                Control.Content.ReviewStatus.PendingReview => CopyReviewStatus.PendingReview,
                Control.Content.ReviewStatus.Approved => CopyReviewStatus.Approved,
                Control.Content.ReviewStatus.Rejected => CopyReviewStatus.Rejected,
                _ => CopyReviewStatus.None,
            }),
            ValidationIssues = [.. entry.Issues.Select(i => $"{i.Kind}: {i.Term}")],
        };
    }

    /// <summary>
    /// The sampling seed of product copy whose request left it 0: FNV-1a 64 of the cache key, so the stored copy's
    /// attribution names a seed that reproduces it (never 0, which means "random" to the sampler).
    /// </summary>
    internal static ulong SeedOf(string grainKey)
    {
        ulong h = 14695981039346656037UL;           // FNV-1a 64 offset basis
        foreach (byte b in Encoding.UTF8.GetBytes(grainKey))
            h = (h ^ b) * 1099511628211UL;          // FNV-1a 64 prime
        return h == 0 ? 1 : h;
    }

    private async Task<GenerateDone> GenerateUncachedAsync(GenerateRequest request, ITokenSink tokens, CancellationToken cancellationToken)
    {
        var options = new GenerationOptions
        {
            MaxTokens = request.MaxTokens,
            Sampling = new SamplingOptions
            {
                Temperature = request.Temperature,
                TopK = request.TopK,
                TopP = request.TopP is > 0 and <= 1 ? request.TopP : 1f,
                MinP = 0,
                Seed = request.Seed == 0 ? null : request.Seed,
            },
        };
        GenerationStream stream;
        try
        {
            stream = scheduler.Submit(request.Prompt, options, cancellationToken);
        }
        catch (SchedulerOverloadedException e)
        {
            throw new ServerOverloadedException(e.Message, e.RetryAfter);
        }
        catch (PromptTooLongException e)
        {
            throw new ProtocolException(ErrorCode.InvalidArgument, e.Message);
        }
        catch (ArgumentException e)
        {
            throw new ProtocolException(ErrorCode.InvalidArgument, e.Message);
        }
        await foreach (string piece in stream.Pieces.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            await tokens.WriteAsync(piece, cancellationToken).ConfigureAwait(false);
        ScheduledGenerationResult result = await stream.Completion.ConfigureAwait(false);
        return new GenerateDone
        {
            Text = result.Text,
            TokenCount = result.TokenCount,
            PromptTokens = result.PromptTokens,
            FinishReason = (byte)(result.FinishReason switch
            {
                Runtime.Generation.FinishReason.EndOfGeneration => Protocol.Messages.FinishReason.EndOfText,
                Runtime.Generation.FinishReason.StopSequence => Protocol.Messages.FinishReason.StopSequence,
                Runtime.Generation.FinishReason.MaxTokens => Protocol.Messages.FinishReason.MaxTokens,
                Runtime.Generation.FinishReason.ContextFull => Protocol.Messages.FinishReason.ContextFull,
                _ => Protocol.Messages.FinishReason.Unknown,
            }),
            ModelVersion = modelVersion,
            Seed = result.Seed,
        };
    }

    public void Collect(ICollection<StatEntry> entries)
    {
        entries.Add(new StatEntry { Name = "generate.active_streams", Value = scheduler.ActiveStreams });
        entries.Add(new StatEntry { Name = "generate.queued_streams", Value = scheduler.QueuedStreams });
        entries.Add(new StatEntry { Name = "generate.tokens", Value = scheduler.TokensGenerated });
        entries.Add(new StatEntry { Name = "generate.steps", Value = scheduler.Steps });
        entries.Add(new StatEntry { Name = "generate.rows", Value = scheduler.Rows });
        entries.Add(new StatEntry { Name = "generate.completed", Value = scheduler.Completed });
        entries.Add(new StatEntry { Name = "generate.rejected", Value = scheduler.Rejected });
        entries.Add(new StatEntry { Name = "generate.copy_cache_hits", Value = Interlocked.Read(ref _copyHits) });
        entries.Add(new StatEntry { Name = "generate.copy_cache_misses", Value = Interlocked.Read(ref _copyMisses) });
    }
}
