namespace Engine.Core.Quant;

/// <summary>
/// Symmetric per-vector int8 quantization of embedding rows: <c>scale = max|x| / 127</c>,
/// <c>q[j] = round(x[j] / scale)</c> (half away from zero, as Q8_0), so row x ≈ <c>scale · q</c> with an error of at
/// most half a step per value. A zero vector gets scale 0 and all-zero values.
/// </summary>
public static class Int8Vector
{
    /// <summary>Largest magnitude of a quantized value.</summary>
    public const int MaxValue = 127;

    /// <summary>Quantizes <paramref name="x"/> into <paramref name="q"/> (same length); returns the scale. Throws on NaN or ±∞.</summary>
    public static float Quantize(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        if (q.Length != x.Length) throw new ArgumentException($"destination has {q.Length} values for {x.Length}", nameof(q));
        float amax = 0;
        for (int j = 0; j < x.Length; j++)
        {
            if (!float.IsFinite(x[j])) throw new ArgumentException($"value {j} is {x[j]}: vectors must be finite", nameof(x));
            amax = MathF.Max(amax, MathF.Abs(x[j]));
        }
        float scale = amax / MaxValue;
        float inv = scale != 0 ? 1f / scale : 0f;
        for (int j = 0; j < x.Length; j++)
            q[j] = (sbyte)Math.Clamp(MathF.Round(x[j] * inv, MidpointRounding.AwayFromZero), -MaxValue, MaxValue);
        return scale;
    }

    /// <summary>Expands <paramref name="q"/> back: <c>x[j] = scale · q[j]</c>.</summary>
    public static void Dequantize(ReadOnlySpan<sbyte> q, float scale, Span<float> x)
    {
        if (q.Length != x.Length) throw new ArgumentException($"destination has {x.Length} values for {q.Length}", nameof(x));
        for (int j = 0; j < q.Length; j++) x[j] = scale * q[j];
    }
}
