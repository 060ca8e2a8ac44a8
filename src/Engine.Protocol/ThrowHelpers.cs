using System.Diagnostics.CodeAnalysis;

namespace Engine.Protocol;

internal static class ThrowHelpers
{
    [DoesNotReturn]
    public static void ThrowDestinationTooSmall() =>
        throw new ArgumentException($"A frame header needs {FrameHeader.Size} bytes.");

    [DoesNotReturn]
    public static void ThrowFrameTooLarge(long bodyBytes, int maxBodyBytes) =>
        throw new ProtocolException(ErrorCode.FrameTooLarge,
            $"The body is {bodyBytes} bytes, past the maximum frame body of {maxBodyBytes} bytes.");
}
