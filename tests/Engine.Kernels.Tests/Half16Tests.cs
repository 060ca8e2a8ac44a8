using Engine.Kernels;

namespace Engine.Kernels.Tests;

public class Half16Tests
{
    [Fact]
    public void Float_to_half_rounds_like_System_Half_and_back_is_exact()
    {
        var rng = new Random(1);
        var special = new[] { 0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, 1e6f, 6.1035156e-05f, 6.0e-05f, 5.96e-08f, 2.98e-08f, 1e-10f,
            float.PositiveInfinity, float.NegativeInfinity, 0.33333334f, 1.0009766f, 1.0004883f, 1.0014648f };
        var values = special.Concat(Enumerable.Range(0, 20000).Select(_ =>
            (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-30, 18)))));
        foreach (float v in values)
        {
            ushort expected = BitConverter.HalfToUInt16Bits((Half)v);
            Assert.True(expected == Half16.FromFloat(v), $"{v:R}: expected 0x{expected:x4}, got 0x{Half16.FromFloat(v):x4}");
            Assert.Equal((float)(Half)v, Half16.ToFloat(expected));
        }
        Assert.True(float.IsNaN(Half16.ToFloat(Half16.FromFloat(float.NaN))));
    }

    [Fact]
    public void Round_half_away_from_zero_matches_MathF_Round()
    {
        foreach (float v in new[] { 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49999997f, 126.5f, -127f, 3.4999998f, 0f })
            Assert.Equal((int)MathF.Round(v, MidpointRounding.AwayFromZero), QuantizeQ8_0Kernel.RoundHalfAway(v));
    }
}
