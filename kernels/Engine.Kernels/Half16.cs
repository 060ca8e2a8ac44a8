using ILGPU;

namespace Engine.Kernels;

/// <summary>
/// IEEE half-precision conversions written with integer bit operations so they compile to the same
/// code on every ILGPU accelerator (no dependence on a device's f16 support). Bit-exact with
/// <see cref="System.Half"/>: round to nearest even when narrowing.
/// </summary>
public static class Half16
{
    /// <summary>f16 bits → f32 (exact).</summary>
    public static float ToFloat(ushort h)
    {
        uint sign = (uint)(h & 0x8000) << 16;
        uint exp = (uint)(h >> 10) & 0x1f;
        uint mant = (uint)h & 0x3ff;
        if (exp == 0)
        {
            // Subnormal or zero: mant * 2^-24, exact in f32.
            float v = mant * 5.9604644775390625e-8f;
            return sign != 0 ? -v : v;
        }
        if (exp == 31) return Interop.IntAsFloat(sign | 0x7f800000u | (mant << 13));
        return Interop.IntAsFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /// <summary>bf16 bits → f32 (exact: bf16 is the top half of an f32).</summary>
    public static float BFloatToFloat(ushort h) => Interop.IntAsFloat((uint)h << 16);

    /// <summary>f32 → f16 bits, round to nearest even, overflow to infinity (as <c>(Half)x</c>).</summary>
    public static ushort FromFloat(float x)
    {
        uint bits = Interop.FloatAsInt(x);
        uint sign = (bits >> 16) & 0x8000;
        uint f = bits & 0x7fffffff;
        if (f >= 0x7f800000) return (ushort)(sign | 0x7c00 | (f > 0x7f800000 ? 0x200u : 0u));
        if (f < 0x38800000)
        {
            // Below the smallest normal f16 (2^-14): the result is a subnormal count of 2^-24 steps,
            // rounded to nearest even. Scaling by 2^24 is exact.
            float t = Interop.IntAsFloat(f) * 16777216f;
            uint fl = (uint)t;
            float diff = t - fl;
            if (diff > 0.5f || (diff == 0.5f && (fl & 1) != 0)) fl++;
            return (ushort)(sign | fl);
        }
        // Round the 23-bit mantissa to 10 bits (nearest even), then rebias the exponent 127 → 15.
        f += 0xfffu + ((f >> 13) & 1);
        uint h = (f - 0x38000000u) >> 13;
        if (h >= 0x7c00) h = 0x7c00;
        return (ushort)(sign | h);
    }
}
