using Engine.Control;
using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;
using Orleans;
using ErrorCode = Engine.Protocol.ErrorCode;

namespace Engine.Cli.Hosting;

/// <summary>
/// FeedbackExport over the control plane: the experiment grain gathers its arms' decision logs from the stats
/// shards (<see cref="IExperimentGrain.ExportDecisions"/>), oldest served first; this answers one page of them.
/// A page holds at most <see cref="MaxPage"/> decisions and about <see cref="PageBytes"/> bytes, so it stays well
/// under the protocol's 1 MiB default body limit.
/// </summary>
public sealed class ControlFeedbackExport(IGrainFactory grains) : IFeedbackExport
{
    /// <summary>Decisions in a page when the request says 0.</summary>
    public const int DefaultPage = 200;

    /// <summary>Most decisions in a page.</summary>
    public const int MaxPage = 1000;

    /// <summary>Estimated body bytes a page stops at (half the default maximum body).</summary>
    public const int PageBytes = 512 * 1024;

    /// <summary>Most decisions read from the grains per request (all shards and model versions of the arms).</summary>
    public const int MaxDecisions = 1_000_000;

    /// <inheritdoc/>
    public async ValueTask<FeedbackExportResult> ExportAsync(FeedbackExportRequest request, CancellationToken cancellationToken)
    {
        if (request.Offset < 0) throw new ProtocolException(ErrorCode.InvalidArgument, $"offset must be ≥ 0, got {request.Offset}");
        if (request.MaxDecisions is < 0 or > MaxPage) throw new ProtocolException(ErrorCode.InvalidArgument, $"max decisions must be in 0..{MaxPage}, got {request.MaxDecisions}");
        string experiment = string.IsNullOrEmpty(request.ExperimentId) ? ArmKey.NoExperiment : request.ExperimentId;
        string? arm = string.IsNullOrEmpty(request.Arm) ? null : request.Arm;
        IReadOnlyList<LoggedDecision> all;
        try
        {
            all = await grains.GetGrain<IExperimentGrain>(experiment).ExportDecisions(arm, MaxDecisions).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (UnknownEntityException e)
        {
            throw new ProtocolException(ErrorCode.NotFound, e.Message);
        }
        int page = request.MaxDecisions == 0 ? DefaultPage : request.MaxDecisions;
        var decisions = new List<FeedbackDecision>(Math.Min(page, Math.Max(0, all.Count - request.Offset)));
        long bytes = 0;
        int next = request.Offset;
        while (next < all.Count && decisions.Count < page)
        {
            var d = all[next];
            long size = 128 + d.RecommendationId.Length + d.Arm.ModelVersion.Length + d.Context.Length + 64L * d.Actions.Count;
            if (decisions.Count > 0 && bytes + size > PageBytes) break;
            bytes += size;
            decisions.Add(ToWire(d));
            next++;
        }
        return new FeedbackExportResult { Decisions = [.. decisions], NextOffset = next, More = next < all.Count, Total = all.Count };
    }

    /// <summary>The wire form of a logged decision ("" for the arm outside experiments).</summary>
    public static FeedbackDecision ToWire(LoggedDecision d) => new()
    {
        RecommendationId = d.RecommendationId,
        Arm = d.Arm.Arm == ArmKey.NoExperiment ? "" : d.Arm.Arm,
        ModelVersion = d.Arm.ModelVersion,
        Context = d.Context,
        ServedUnixMs = d.ServedAt.ToUnixTimeMilliseconds(),
        UpdatedUnixMs = d.UpdatedAt?.ToUnixTimeMilliseconds() ?? 0,
        Shadow = d.Shadow,
        Actions = [.. d.Actions.Select(a => new FeedbackAction
        {
            ProductId = a.ProductId, Position = a.Position, Probability = a.Probability,
            Clicks = a.Clicks, Carts = a.Carts, Purchases = a.Purchases, Returns = a.Returns, Reward = a.Reward,
        })],
    };
}
