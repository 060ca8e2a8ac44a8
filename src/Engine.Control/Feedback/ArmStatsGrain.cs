using Microsoft.Extensions.Options;

namespace Engine.Control.Feedback;

/// <summary>Persisted state of one stats shard.</summary>
[GenerateSerializer]
public sealed class ArmStatsState
{
    [Id(0)] public ArmCounters Counters { get; set; } = ArmCounters.Zero;
    /// <summary>Logged decisions, oldest first (bounded).</summary>
    [Id(1)] public List<DecisionRecord> Decisions { get; set; } = [];
}

/// <summary>One shard of one (experiment, arm, model version): counts, reward sums and the
/// decision log. Rewards are joined to the logged decision by (recommendation, product).</summary>
internal sealed class ArmStatsGrain(
    [PersistentState("armstats", ControlStorage.Name)] IPersistentState<ArmStatsState> state,
    IOptions<ControlOptions> options) : Grain, IArmStatsGrain
{
    private readonly ControlOptions _options = options.Value;

    async Task IArmStatsGrain.Apply(IReadOnlyList<FeedbackSignal> batch)
    {
        var s = state.State;
        var c = s.Counters;
        long assignments = 0, exposures = 0, clicks = 0, carts = 0, purchases = 0, returns = 0;
        double sum = 0, squares = 0;
        foreach (var signal in batch)
        {
            switch (signal.Kind)
            {
                case FeedbackKind.Assignment: assignments++; continue;
                case FeedbackKind.Exposure: exposures++; Log(signal); continue;
                case FeedbackKind.Click: clicks++; break;
                case FeedbackKind.AddToCart: carts++; break;
                case FeedbackKind.Purchase: purchases++; break;
                case FeedbackKind.Return: returns++; break;
            }
            var reward = _options.Rewards.For(signal.Kind);
            sum += reward;
            squares += reward * reward;
            var i = s.Decisions.FindLastIndex(d => d.RecommendationId == signal.RecommendationId && d.Action == signal.ProductId);
            if (i >= 0) s.Decisions[i] = s.Decisions[i] with { Reward = s.Decisions[i].Reward + reward };
        }
        s.Counters = c.Add(new ArmCounters(assignments, exposures, clicks, carts, purchases, returns, sum, squares));
        var excess = s.Decisions.Count - _options.DecisionLogCapacity;
        if (excess > 0) s.Decisions.RemoveRange(0, excess);
        await state.WriteStateAsync();
    }

    private void Log(FeedbackSignal exposure)
    {
        foreach (var action in exposure.Actions ?? [])
            state.State.Decisions.Add(new DecisionRecord(exposure.RecommendationId, exposure.Context ?? "", action.ProductId, action.Probability, 0));
    }

    Task<ArmCounters> IArmStatsGrain.GetCounters() => Task.FromResult(state.State.Counters);

    Task<IReadOnlyList<DecisionRecord>> IArmStatsGrain.Export(int maxRecords)
    {
        var d = state.State.Decisions;
        return Task.FromResult<IReadOnlyList<DecisionRecord>>(d.Skip(Math.Max(0, d.Count - maxRecords)).ToArray());
    }
}
