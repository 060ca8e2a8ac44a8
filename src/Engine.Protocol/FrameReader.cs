using System.Buffers;

namespace Engine.Protocol;

/// <summary>
/// Pure frame parser over a <see cref="ReadOnlySequence{T}"/> (Kestrel's HttpParser shape): no state,
/// no allocation, no copy of the body. The length is checked against the maximum from the header
/// alone, before a byte of the body needs to be buffered.
/// </summary>
public static class FrameReader
{
    /// <summary>
    /// Tries to parse one frame from the start of <paramref name="buffer"/>.
    /// On <see cref="FrameReadStatus.Complete"/>, <paramref name="frame"/> holds the header and a body slice and
    /// <paramref name="consumed"/> = <paramref name="examined"/> = the end of that frame.
    /// On <see cref="FrameReadStatus.NeedMoreData"/>, nothing is consumed and everything was examined
    /// (pass both to <c>PipeReader.AdvanceTo</c> so the next read waits for new bytes instead of spinning).
    /// Any other status is fatal: the input cannot be resynchronised.
    /// </summary>
    public static FrameReadStatus TryParse(
        in ReadOnlySequence<byte> buffer,
        int maxBodyBytes,
        out Frame frame,
        out SequencePosition consumed,
        out SequencePosition examined)
    {
        frame = default;
        consumed = buffer.Start;
        examined = buffer.End;
        if (buffer.Length < FrameHeader.Size) return FrameReadStatus.NeedMoreData;

        FrameReadStatus status;
        FrameHeader header;
        ReadOnlySpan<byte> first = buffer.FirstSpan;
        if (first.Length >= FrameHeader.Size)
        {
            // Fast path: the header is contiguous in the first segment.
            status = FrameHeader.TryRead(first[..FrameHeader.Size], maxBodyBytes, out header);
        }
        else
        {
            Span<byte> copy = stackalloc byte[FrameHeader.Size];
            buffer.Slice(0, FrameHeader.Size).CopyTo(copy);
            status = FrameHeader.TryRead(copy, maxBodyBytes, out header);
        }
        if (status != FrameReadStatus.Complete) return status;

        long total = FrameHeader.Size + (long)header.Length;
        if (buffer.Length < total) return FrameReadStatus.NeedMoreData;

        ReadOnlySequence<byte> body = buffer.Slice(FrameHeader.Size, header.Length);
        frame = new Frame(header, body);
        consumed = body.End;
        examined = body.End;
        return FrameReadStatus.Complete;
    }
}
