using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Cpu.Kernels;

/// <summary>
/// IEEE half → single conversion without a lookup table, exact for every one of the 65536 values
/// (tested against <c>(float)Half</c>): the 15 magnitude bits are moved into a float's exponent and
/// mantissa and the result scaled by 2^112 (the exponent bias difference, 127 − 15), which also turns
/// half subnormals into the right normal floats; Inf/NaN keep the all-ones exponent.
/// </summary>
internal static class HalfConversion
{
    private const uint TwoPow112Bits = 0x7780_0000; // 2^112 as f32 bits: biased exponent 239

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort h)
    {
        uint mag = (uint)(h & 0x7fff) << 13;
        float f = (h & 0x7c00) == 0x7c00
            ? BitConverter.UInt32BitsToSingle(mag | 0x7f80_0000)
            : BitConverter.UInt32BitsToSingle(mag) * BitConverter.UInt32BitsToSingle(TwoPow112Bits);
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(f) | ((uint)(h & 0x8000) << 16));
    }

    /// <summary>Eight halves (in the low 16 bits of each lane) to eight floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<uint> h)
    {
        var mag = (h & Vector256.Create(0x7fffu)) << 13;
        var finite = mag.AsSingle() * Vector256.Create(BitConverter.UInt32BitsToSingle(TwoPow112Bits));
        var special = (mag | Vector256.Create(0x7f80_0000u)).AsSingle();
        var isSpecial = Vector256.Equals(h & Vector256.Create(0x7c00u), Vector256.Create(0x7c00u)).AsSingle();
        var f = Vector256.ConditionalSelect(isSpecial, special, finite);
        return (f.AsUInt32() | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }
}
