using Engine.Protocol.Messages;

namespace Engine.Server.Handlers;

/// <summary>Ranks products for a shopper (the ranking of issue 4 plugs in here).</summary>
public interface IRecommendHandler
{
    /// <summary>Answers one Recommend. Throw <see cref="Protocol.ProtocolException"/> for a coded error, <see cref="ServerOverloadedException"/> to shed load.</summary>
    ValueTask<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken);
}
