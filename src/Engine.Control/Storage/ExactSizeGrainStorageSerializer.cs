using System.Buffers;
using Orleans.Storage;

namespace Engine.Control.Storage;

/// <summary>
/// Orleans' binary grain-state serializer (the same bytes as <see cref="OrleansGrainStorageSerializer"/>, which reads
/// them back) writing into a reused per-thread buffer, then copying out exactly the state's bytes. The stock one grows a
/// fresh buffer by doubling on every write: a session checkpoint (~4 KB state) allocated ~10 KB of discarded buffers,
/// and at 2,000 Recommends/s with exposure checkpoints that was ~0.8 KB per Recommend (allocation ticks, seventh session).
/// </summary>
public sealed class ExactSizeGrainStorageSerializer(Orleans.Serialization.Serializer serializer) : IGrainStorageSerializer
{
    /// <summary>Largest buffer a thread keeps; a larger one goes to the shared one (below).</summary>
    public const int MaxKeptBufferBytes = 1 << 20;

    /// <summary>Largest buffer kept for states above <see cref="MaxKeptBufferBytes"/> (one, shared by the process).</summary>
    public const int MaxSharedBufferBytes = 64 << 20;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;

    // States larger than a thread's buffer (a stats shard's decision log, ~3 MB, written every few minutes) share one
    // process-wide buffer, taken for a state type whose last write was that large: a fresh buffer grown by doubling was
    // ~8 MB of large-object allocations per such write (16.5 MB in one second when the shards wrote; eighth session).
    private static ArrayBufferWriter<byte>? s_large;

    private static class LastSize<T>
    {
        public static int Bytes; // bytes of the last state of this type written (a hint: racy by design)
    }

    private readonly OrleansGrainStorageSerializer _reader = new(serializer);

    /// <inheritdoc/>
    public BinaryData Serialize<T>(T? input) => Serialize(input, 0, static (bytes, _) => new BinaryData(bytes.ToArray()));

    /// <summary>What <see cref="Serialize{T, TArg, TResult}"/> does with the bytes (valid only during the call).</summary>
    public delegate TResult BytesHandler<in TArg, out TResult>(ReadOnlySpan<byte> bytes, TArg arg);

    /// <summary>
    /// Serializes <paramref name="input"/> into this thread's reused buffer and passes the bytes to <paramref name="handler"/>
    /// (which copies them where they belong): no array of the state's size is allocated.
    /// </summary>
    public TResult Serialize<T, TArg, TResult>(T? input, TArg arg, BytesHandler<TArg, TResult> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var last = Volatile.Read(ref LastSize<T>.Bytes);
        ArrayBufferWriter<byte> buffer;
        if (last > MaxKeptBufferBytes)
            buffer = Interlocked.Exchange(ref s_large, null) ?? new ArrayBufferWriter<byte>(last + last / 4);
        else
        {
            buffer = t_buffer ?? new ArrayBufferWriter<byte>(16 * 1024);
            t_buffer = null; // a serializer that re-enters on this thread gets its own buffer
        }
        buffer.ResetWrittenCount();
        try
        {
            serializer.Serialize(input, buffer);
            Volatile.Write(ref LastSize<T>.Bytes, buffer.WrittenCount);
            return handler(buffer.WrittenSpan, arg);
        }
        finally
        {
            if (buffer.Capacity <= MaxKeptBufferBytes) t_buffer = buffer;
            else if (buffer.Capacity <= MaxSharedBufferBytes) Volatile.Write(ref s_large, buffer);
        }
    }

    /// <inheritdoc/>
    public T? Deserialize<T>(BinaryData input) => _reader.Deserialize<T>(input);
}
