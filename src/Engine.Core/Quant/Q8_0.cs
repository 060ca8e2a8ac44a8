using System.Runtime.InteropServices;

namespace Engine.Core.Quant;

/// <summary>
/// Scalar reference quantization to and from Q8_0, bit-exact with llama.cpp's
/// <c>quantize_row_q8_0_ref</c> / <c>dequantize_row_q8_0</c> (ggml-quants.c):
/// per block of 32, <c>d = amax / 127</c> stored as f16, <c>q = round(x / d)</c> with rounding half
/// away from zero (C's <c>roundf</c>), and <c>q = 0</c> when <c>d == 0</c>.
/// </summary>
public static class Q8_0
{
    /// <summary>Quantizes <paramref name="src"/> (a multiple of 32 floats) into blocks.</summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<BlockQ8_0> dst)
    {
        if (src.Length % BlockQ8_0.Size != 0) throw new ArgumentException($"length {src.Length} is not a multiple of {BlockQ8_0.Size}", nameof(src));
        int nb = src.Length / BlockQ8_0.Size;
        if (dst.Length < nb) throw new ArgumentException("destination too small", nameof(dst));
        for (int b = 0; b < nb; b++)
        {
            var x = src.Slice(b * BlockQ8_0.Size, BlockQ8_0.Size);
            float amax = 0;
            for (int j = 0; j < BlockQ8_0.Size; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            dst[b].D = (Half)d;
            for (int j = 0; j < BlockQ8_0.Size; j++)
                dst[b].Qs[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>Quantizes into raw bytes (34 per block).</summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst) =>
        QuantizeRow(src, MemoryMarshal.Cast<byte, BlockQ8_0>(dst));

    /// <summary>Expands blocks back to floats: <c>y = d * q</c>.</summary>
    public static void DequantizeRow(ReadOnlySpan<BlockQ8_0> src, Span<float> dst)
    {
        int nb = dst.Length / BlockQ8_0.Size;
        for (int b = 0; b < nb; b++)
        {
            float d = (float)src[b].D;
            for (int j = 0; j < BlockQ8_0.Size; j++) dst[b * BlockQ8_0.Size + j] = d * src[b].Qs[j];
        }
    }

    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst) =>
        DequantizeRow(MemoryMarshal.Cast<byte, BlockQ8_0>(src), dst);
}
