using System.Buffers;

namespace Engine.Protocol;

/// <summary>
/// The <see cref="IBufferWriter{T}"/> MemoryPack serializes a body into. It hands out memory straight
/// from the destination writer, just past 16 bytes reserved for the header, so a body that fits the
/// first block is written in place (no copy). Only when the body outgrows that block does the rest
/// spill into a private buffer, copied once at <see cref="Complete"/>. Nothing is committed to the
/// destination until <see cref="Complete"/>, so a body that fails or is too large leaves it untouched.
/// This keeps to the IBufferWriter contract: all in-place writes land in one GetMemory block,
/// committed by a single Advance.
/// </summary>
internal sealed class FrameBodyBuffer : IBufferWriter<byte>
{
    // First block asked of the destination: header + a typical body. Pipe segments are 4 KiB, so a
    // PipeWriter usually hands out more than this.
    private const int FirstBlockHint = FrameHeader.Size + 1024;

    private IBufferWriter<byte>? _destination;
    private Memory<byte> _block;      // [header 16 | body ...] from the destination
    private int _inBlock;             // body bytes written into _block
    private bool _spilled;
    private byte[] _spill = [];       // body bytes past the block
    private int _spillCount;

    public long BodyLength => _inBlock + (long)_spillCount;

    public void Begin(IBufferWriter<byte> destination)
    {
        _destination = destination;
        _block = destination.GetMemory(FirstBlockHint);
        _inBlock = 0;
        _spilled = false;
        _spillCount = 0;
    }

    public void Advance(int count)
    {
        if (_spilled) _spillCount += count;
        else _inBlock += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        if (sizeHint < 1) sizeHint = 1;
        if (!_spilled)
        {
            int free = _block.Length - FrameHeader.Size - _inBlock;
            if (free >= sizeHint) return _block[(FrameHeader.Size + _inBlock)..];
            _spilled = true;
        }
        if (_spill.Length - _spillCount < sizeHint)
        {
            int size = Math.Max(_spill.Length * 2, Math.Max(_spillCount + sizeHint, 4096));
            byte[] bigger = ArrayPool<byte>.Shared.Rent(size);
            _spill.AsSpan(0, _spillCount).CopyTo(bigger);
            if (_spill.Length > 0) ArrayPool<byte>.Shared.Return(_spill);
            _spill = bigger;
        }
        return _spill.AsMemory(_spillCount);
    }

    public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    /// <summary>Writes the header, commits header + body to the destination, and resets.</summary>
    public void Complete(Opcode opcode, FrameFlags flags, uint streamId, int maxBodyBytes)
    {
        IBufferWriter<byte> destination = _destination!;
        long length = BodyLength;
        if (length > maxBodyBytes)
        {
            Reset();
            ThrowHelpers.ThrowFrameTooLarge(length, maxBodyBytes);
        }
        new FrameHeader(opcode, flags, streamId, (uint)length).Write(_block.Span);
        destination.Advance(FrameHeader.Size + _inBlock);
        if (_spillCount > 0) destination.Write(_spill.AsSpan(0, _spillCount));
        Reset();
    }

    /// <summary>Forgets a body that failed to serialize; the destination is untouched.</summary>
    public void Reset()
    {
        _destination = null;
        _block = default;
        _inBlock = 0;
        _spilled = false;
        _spillCount = 0;
        // A spill buffer grown for one huge body is given back rather than kept per connection.
        if (_spill.Length > 64 * 1024)
        {
            ArrayPool<byte>.Shared.Return(_spill);
            _spill = [];
        }
    }
}
