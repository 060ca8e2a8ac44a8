using Engine.Control.Experiments;

namespace Engine.Control.Tests;

public class AssignmentTests
{
    private const int Customers = 20_000;
    // A 50/50 split of 20 000 has a standard deviation of 71 customers (0.35%); 5 sd never flakes.
    private const double SplitTolerance = 5 * 0.0035;

    private static IEnumerable<string> CustomerIds(int n = Customers) => Enumerable.Range(0, n).Select(i => $"customer-{i}");

    [Fact]
    public void Assignment_is_deterministic_across_config_instances()
    {
        var a = TestData.Experiment("exp1");
        var b = a with { Arms = a.Arms.ToArray() };
        foreach (var c in CustomerIds(2000))
            Assert.Equal(ExperimentAssignment.Assign(a, c), ExperimentAssignment.Assign(b, c));
    }

    [Fact]
    public void Stable_hash_is_pinned_to_known_values()
    {
        // Pinned (computed independently from FNV-1a 64 + fmix64) so a change of the hash, which would
        // reshuffle every live experiment, fails here.
        Assert.Equal(13634858514292217235UL, BucketHash.Hash("arm:salt", "customer-1"));
        Assert.Equal(7235, BucketHash.Bucket("arm:salt", "customer-1", 10_000));
        Assert.Equal(7101, BucketHash.Bucket("layer:ranking", "c", 10_000));
    }

    [Theory]
    [InlineData(5000)]
    [InlineData(1000)]
    [InlineData(9000)]
    public void Split_proportions_match_weights(int treatmentBasisPoints)
    {
        var config = TestData.Experiment("split") with
        {
            Arms = [new ArmConfig("control", 10_000 - treatmentBasisPoints, IsControl: true), new ArmConfig("treatment", treatmentBasisPoints)],
        };
        config.Validate();
        var treated = CustomerIds().Count(c => ExperimentAssignment.Assign(config, c).ServedArm == "treatment");
        Assert.InRange(treated / (double)Customers, treatmentBasisPoints / 10_000.0 - SplitTolerance, treatmentBasisPoints / 10_000.0 + SplitTolerance);
    }

    [Fact]
    public void A_new_salt_reshuffles_customers()
    {
        var a = TestData.Experiment("salted");
        var b = a with { Salt = "another salt" };
        var moved = CustomerIds(4000).Count(c => ExperimentAssignment.Assign(a, c).ServedArm != ExperimentAssignment.Assign(b, c).ServedArm);
        Assert.InRange(moved, 1500, 2500); // independent 50/50 splits disagree for about half
    }

    [Fact]
    public void Experiments_in_one_layer_are_mutually_exclusive()
    {
        var a = TestData.Experiment("a", layer: "L", start: 0, end: 3000);
        var b = TestData.Experiment("b", layer: "L", start: 3000, end: 10_000);
        var inA = 0;
        foreach (var c in CustomerIds())
        {
            var ea = ExperimentAssignment.Assign(a, c).Enrolled;
            var eb = ExperimentAssignment.Assign(b, c).Enrolled;
            Assert.True(ea ^ eb, $"{c} must be in exactly one experiment of the layer");
            if (ea) inA++;
        }
        Assert.InRange(inA / (double)Customers, 0.3 - SplitTolerance, 0.3 + SplitTolerance);
    }

    [Fact]
    public void Holdout_gets_control_and_has_the_configured_share()
    {
        var config = TestData.Experiment("held", holdout: 1000);
        var held = 0;
        foreach (var c in CustomerIds())
        {
            var a = ExperimentAssignment.Assign(config, c);
            if (!a.InHoldout) continue;
            held++;
            Assert.Equal("control", a.ServedArm);
            Assert.Null(a.ShadowArm);
        }
        Assert.InRange(held / (double)Customers, 0.1 - SplitTolerance, 0.1 + SplitTolerance);
    }

    [Fact]
    public void Shadow_arm_is_computed_for_everyone_and_never_served()
    {
        var config = TestData.Experiment("shadowed", shadow: true);
        config.Validate();
        foreach (var c in CustomerIds())
        {
            var a = ExperimentAssignment.Assign(config, c);
            Assert.NotEqual("shadow", a.ServedArm);
            Assert.Equal("shadow", a.ShadowArm);
        }
    }

    [Fact]
    public void Rollback_serves_control_to_everyone_and_kill_enrolls_nobody()
    {
        var config = TestData.Experiment("lifecycle", shadow: true);
        var rolledBack = config with { Status = ExperimentStatus.RolledBack };
        var killed = config with { Status = ExperimentStatus.Killed };
        foreach (var c in CustomerIds(3000))
        {
            var r = ExperimentAssignment.Assign(rolledBack, c);
            Assert.True(r.Enrolled);
            Assert.Equal("control", r.ServedArm);
            Assert.Null(r.ShadowArm);
            var k = ExperimentAssignment.Assign(killed, c);
            Assert.False(k.Enrolled);
            Assert.Null(k.ServedArm);
        }
    }

    [Theory]
    [InlineData("weights")]
    [InlineData("two controls")]
    [InlineData("weighted shadow")]
    [InlineData("range")]
    [InlineData("bad id")]
    [InlineData("duplicate arms")]
    public void Invalid_configs_are_refused_with_a_message(string breakage)
    {
        var ok = TestData.Experiment("valid", shadow: true);
        ok.Validate();
        var bad = breakage switch
        {
            "weights" => ok with { Arms = [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("treatment", 4000)] },
            "two controls" => ok with { Arms = [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("treatment", 5000, IsControl: true)] },
            "weighted shadow" => ok with { Arms = [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("treatment", 4000), new ArmConfig("s", 1000, IsShadow: true)] },
            "range" => ok with { LayerStart = 500, LayerEnd = 500 },
            "bad id" => ok with { Id = "has|bar" },
            _ => ok with { Arms = [new ArmConfig("control", 5000, IsControl: true), new ArmConfig("control", 5000)] },
        };
        var ex = Assert.Throws<ArgumentException>(bad.Validate);
        Assert.Contains("experiment", ex.Message);
    }
}
