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
/// token frames, scheduler overload → Overloaded, its figures → Stats.
/// </summary>
internal sealed class SchedulerGenerateHandler(GenerationScheduler scheduler, string modelVersion) : IGenerateHandler, IStatsSource
{
    public async Task<GenerateDone> GenerateAsync(GenerateRequest request, ITokenSink tokens, CancellationToken cancellationToken)
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
    }
}
