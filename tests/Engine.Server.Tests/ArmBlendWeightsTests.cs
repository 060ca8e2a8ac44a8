using Engine.Cli.Hosting;
using Engine.Control.Experiments;
using Engine.Protocol.Messages;
using Engine.Runtime.Ranking;

namespace Engine.Server.Tests;

/// <summary>
/// Experiment arms carrying ranking parameters (<see cref="ArmConfig.Ranking"/>): the Recommend path ranks a
/// shopper with the blend weights of the arm served to them (<see cref="ExperimentArms.Serving"/>).
/// </summary>
public sealed class ArmBlendWeightsTests : IClassFixture<RankingRecommendTests.Catalog>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    // Margin alone: every other term of the score formula weighted 0, so a product's score is its margin.
    private static readonly ArmRanking MarginOnly = new(Similarity: 0, Click: 0, Purchase: 0, Margin: 1, ReturnRisk: 0, BackorderRisk: 0, Boost: 0);

    private readonly RankingRecommendTests.Catalog _catalog;

    public ArmBlendWeightsTests(RankingRecommendTests.Catalog catalog) => _catalog = catalog;

    private static ExperimentConfig Experiment(ExperimentStatus status = ExperimentStatus.Running) => new(
        "blend", "salt-1", "ranking", 0, ExperimentConfig.TotalBasisPoints, 0,
        [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("margin", 5000, Ranking: MarginOnly)], status, Version: 1);

    [Fact]
    public async Task Two_arms_with_different_weights_rank_the_same_shopper_differently()
    {
        var assigner = new SwitchableAssigner(Experiment());
        string shopper = Enumerable.Range(0, 1000).Select(i => $"s{i}").First(c => ExperimentAssignment.Assign(assigner.Config, c).ServedArm == "margin");
        var profile = new float[_catalog.Ranking.Index.Dimensions];
        Assert.True(_catalog.Ranking.Index.TryGetVector("p7", profile));
        var profiles = new FixedProfile(shopper, profile);
        await using var handler = new RankingRecommendHandler(_catalog.Ranking.Pipeline, profiles,
            ExperimentArms.Serving(assigner, _catalog.Ranking.Pipeline.Options.Blend));
        var request = new RecommendRequest { CustomerId = shopper, K = 10 };

        RecommendResult treated = await handler.RecommendAsync(request, CancellationToken.None).AsTask().WaitAsync(Wait);
        assigner.Config = Experiment(ExperimentStatus.RolledBack); // the same shopper is now served control
        RecommendResult control = await handler.RecommendAsync(request, CancellationToken.None).AsTask().WaitAsync(Wait);

        Assert.Equal("blend/margin", treated.ExperimentArm);
        Assert.Equal("blend/control", control.ExperimentArm);
        Assert.NotEqual(control.Items.Select(i => i.ProductId), treated.Items.Select(i => i.ProductId));
        // Under the margin arm the score is the margin, best first; the control arm leads with similarity.
        foreach (var item in treated.Items)
            Assert.Equal(_catalog.Ranking.Pipeline.Find(item.ProductId)!.Margin, item.Score, 1e-5f);
        Assert.True(treated.Items.Zip(treated.Items.Skip(1)).All(p => p.First.Score >= p.Second.Score));
        Assert.Contains("recent views", control.Items[0].Reason);
        Assert.NotEqual(control.Items[0].Score, _catalog.Ranking.Pipeline.Find(control.Items[0].ProductId)!.Margin);
    }

    [Fact]
    public void An_arm_overrides_only_the_weights_it_names_over_the_service_default()
    {
        var baseline = new BlendWeights { Similarity = 2, Margin = 0.5f, ProfileMix = 0.4f };
        BlendWeights blend = ExperimentArms.BlendOf(new ArmRanking(Margin: 3), baseline);
        Assert.Equal(baseline with { Margin = 3 }, blend);
        Assert.Equal(baseline, ExperimentArms.BlendOf(new ArmRanking(), baseline));
    }

    [Fact]
    public void The_assignment_carries_the_served_arm_ranking_and_holdout_or_rollback_serve_controls()
    {
        var config = Experiment();
        var customers = Enumerable.Range(0, 400).Select(i => $"s{i}").ToArray();
        var served = customers.Select(c => ExperimentAssignment.Assign(config, c)).ToArray();
        Assert.Contains(served, a => a.ServedArm == "margin");
        Assert.Contains(served, a => a.ServedArm == "control");
        Assert.All(served, a => Assert.Same(a.ServedArm == "margin" ? MarginOnly : null, a.ServedRanking));

        string treated = customers[Array.FindIndex(served, a => a.ServedArm == "margin")];
        var rolledBack = ExperimentAssignment.Assign(Experiment(ExperimentStatus.RolledBack), treated);
        Assert.Equal("control", rolledBack.ServedArm);
        Assert.Null(rolledBack.ServedRanking);
    }

    [Fact]
    public void A_config_with_a_non_finite_weight_or_profile_mix_out_of_range_is_refused_naming_the_arm()
    {
        ExperimentConfig With(ArmRanking ranking) => Experiment() with
        {
            Arms = [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("bad-arm", 5000, Ranking: ranking)],
        };
        Assert.Contains("bad-arm", Assert.Throws<ArgumentException>(() => With(new ArmRanking(Click: float.NaN)).Validate()).Message);
        Assert.Contains("ProfileMix", Assert.Throws<ArgumentException>(() => With(new ArmRanking(ProfileMix: 1.5f)).Validate()).Message);
        With(MarginOnly).Validate();
    }

    private sealed class FixedProfile(string customer, float[] profile) : IShopperProfiles
    {
        public ValueTask<float[]?> GetAsync(string customerId, CancellationToken cancellationToken) =>
            ValueTask.FromResult(customerId == customer ? profile : null);
    }

    /// <summary>A local assigner over one config the test can replace (as a pushed change would).</summary>
    private sealed class SwitchableAssigner(ExperimentConfig config) : IExperimentAssigner
    {
        public ExperimentConfig Config { get; set; } = config;
        public long Version => Config.Version;
        public Assignment Assign(string experimentId, string customerId) => ExperimentAssignment.Assign(Config, customerId);
        public IReadOnlyList<Assignment> AssignAll(string customerId) => [ExperimentAssignment.Assign(Config, customerId)];
    }
}
