namespace Engine.Protocol;

/// <summary>Outcome of <see cref="FrameReader.TryParse"/>. The last three are fatal for the connection.</summary>
public enum FrameReadStatus
{
    /// <summary>A whole frame was parsed.</summary>
    Complete,
    /// <summary>The buffer holds less than a whole frame; read more and try again.</summary>
    NeedMoreData,
    /// <summary>The first four bytes are not "ENGN": the stream is not (or no longer) framed.</summary>
    BadMagic,
    /// <summary>The header's version byte is not one this build reads.</summary>
    UnsupportedVersion,
    /// <summary>The header's length is past the maximum body size; nothing of the body was buffered.</summary>
    FrameTooLarge,
}

/// <summary>Maps a fatal read status to the error code sent back before closing.</summary>
public static class FrameReadStatusExtensions
{
    /// <summary>The <see cref="ErrorCode"/> for a fatal <paramref name="status"/>.</summary>
    public static ErrorCode ToErrorCode(this FrameReadStatus status) => status switch
    {
        FrameReadStatus.BadMagic => ErrorCode.BadFrame,
        FrameReadStatus.UnsupportedVersion => ErrorCode.UnsupportedVersion,
        FrameReadStatus.FrameTooLarge => ErrorCode.FrameTooLarge,
        _ => ErrorCode.None,
    };
}
