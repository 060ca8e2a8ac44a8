using Engine.Control.Experiments;
using Engine.Control.Feedback;

namespace Engine.Control.Tests;

public class StatisticsTests
{
    [Fact]
    public void Srm_passes_a_split_within_noise()
    {
        var r = SrmCheck.Check([5030, 4970], [5000, 5000]);
        Assert.True(r.Checked);
        Assert.False(r.Mismatch);
        Assert.Equal(0.36, r.ChiSquare, 6); // (30² + 30²) / 5000
    }

    [Fact]
    public void Srm_detects_a_broken_split()
    {
        // 5300 / 4700 against 50/50: chi² = 2·300²/5000 = 36, far above 10.828 (p = 0.001, 1 df).
        var r = SrmCheck.Check([5300, 4700], [5000, 5000]);
        Assert.True(r.Mismatch);
        Assert.Equal(36, r.ChiSquare, 6);
        Assert.True(SrmCheck.Check([900, 1000, 1100], [1, 1, 1]).Mismatch); // chi² = 20 > 13.816 (2 df)
    }

    [Fact]
    public void Srm_does_not_judge_tiny_samples()
    {
        var r = SrmCheck.Check([40, 10], [5000, 5000]);
        Assert.False(r.Checked);
        Assert.False(r.Mismatch);
    }

    [Fact]
    public void Wilson_interval_matches_the_textbook_value()
    {
        // 50 of 100 at 95%: [0.4038, 0.5962] (Newcombe 1998, table I's method 3 for p = 0.5).
        var r = Rate.Wilson(50, 100);
        Assert.Equal(0.5, r.Value, 12);
        Assert.Equal(0.4038, r.Low, 4);
        Assert.Equal(0.5962, r.High, 4);
        var zero = Rate.Wilson(0, 20);
        Assert.Equal(0, zero.Low);
        Assert.InRange(zero.High, 0.15, 0.17); // 0.1611
    }

    [Fact]
    public void Reward_values_must_rank_click_below_cart_below_purchase_and_return_negative()
    {
        new RewardValues().Validate();
        Assert.Throws<ArgumentException>(() => new RewardValues(Click: 0.5, AddToCart: 0.3).Validate());
        Assert.Throws<ArgumentException>(() => new RewardValues(Return: 0.1).Validate());
    }
}
