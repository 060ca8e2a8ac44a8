using System.Buffers;
using BenchmarkDotNet.Attributes;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Benchmarks.Protocol;

/// <summary>
/// Frame parsing over a receive buffer of 1,000 back-to-back Recommend frames, contiguous and split
/// into 4 KiB segments (as a pipe delivers them). The parser must allocate nothing per frame
/// (STYLE.md habit 6): [MemoryDiagnoser] shows Allocated = 0 B. Writing frames into a reused buffer is
/// measured beside it (header + MemoryPack body in place).
/// </summary>
[MemoryDiagnoser]
public class FrameParserBenchmarks
{
    private const int Frames = 1000;
    private ReadOnlySequence<byte> _contiguous;
    private ReadOnlySequence<byte> _segmented;
    private readonly FrameWriter _writer = new();
    private readonly ArrayBufferWriter<byte> _output = new(1 << 20);
    private readonly GenerateToken _token = new() { Sequence = 7, Text = " shoes" };

    [GlobalSetup]
    public void Setup()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var request = new RecommendRequest { CustomerId = "customer-123456", Device = "web", Page = "home", K = 10, TimeUnixMs = 1_764_000_000_000 };
        for (int i = 0; i < Frames; i++) _writer.Write(buffer, Opcode.Recommend, FrameFlags.End, (uint)i + 1, request);
        byte[] bytes = buffer.WrittenSpan.ToArray();
        _contiguous = new ReadOnlySequence<byte>(bytes);
        _segmented = Segments.Split(bytes, 4096);
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public long ParseContiguous() => ParseAll(_contiguous);

    [Benchmark(OperationsPerInvoke = Frames)]
    public long ParseSegmented() => ParseAll(_segmented);

    private static long ParseAll(ReadOnlySequence<byte> buffer)
    {
        long streams = 0;
        while (FrameReader.TryParse(buffer, ProtocolConstants.DefaultMaxBodyBytes, out Frame frame, out SequencePosition consumed, out _) == FrameReadStatus.Complete)
        {
            streams += frame.StreamId + frame.Body.Length;
            buffer = buffer.Slice(consumed);
        }
        return streams;
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public int WriteTokenFrames()
    {
        _output.ResetWrittenCount();
        for (int i = 0; i < Frames; i++) _writer.Write(_output, Opcode.GenerateToken, FrameFlags.None, 3, _token);
        return _output.WrittenCount;
    }

    private static class Segments
    {
        private sealed class Segment : ReadOnlySequenceSegment<byte>
        {
            public Segment(ReadOnlyMemory<byte> memory, long index) { Memory = memory; RunningIndex = index; }
            public Segment Append(ReadOnlyMemory<byte> memory) { var next = new Segment(memory, RunningIndex + Memory.Length); Next = next; return next; }
        }

        public static ReadOnlySequence<byte> Split(byte[] bytes, int size)
        {
            var first = new Segment(bytes.AsMemory(0, Math.Min(size, bytes.Length)), 0);
            Segment last = first;
            for (int i = size; i < bytes.Length; i += size) last = last.Append(bytes.AsMemory(i, Math.Min(size, bytes.Length - i)));
            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }
    }
}
