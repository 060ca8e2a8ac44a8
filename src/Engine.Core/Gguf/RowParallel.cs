namespace Engine.Core.Gguf;

/// <summary>
/// Produces a tensor's data row by row on several threads and streams it to a <see cref="GgufWriter"/>
/// slab by slab, so memory use stays at one slab whatever the tensor's size.
/// </summary>
internal static class RowParallel
{
    /// <summary>Bytes of output held at once (one slab).</summary>
    private const long SlabBytes = 16 << 20;

    /// <summary>Bytes per parallel work item: large enough that scheduling costs little.</summary>
    private const long ChunkBytes = 256 << 10;

    /// <summary>Fills <paramref name="dst"/> with rows <c>[firstRow, firstRow + rowCount)</c> in the tensor's type.</summary>
    public delegate void Fill(long firstRow, int rowCount, Span<byte> dst);

    /// <summary>
    /// Writes tensor <paramref name="t"/> (the writer's current tensor) by calling <paramref name="fill"/> on
    /// disjoint row ranges, possibly concurrently: <paramref name="fill"/> must not depend on which thread or
    /// in what order ranges are produced.
    /// </summary>
    public static void Write(GgufWriter writer, GgufTensorInfo t, int threads, ref byte[]? buffer, Fill fill, Action<long>? wrote)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(t.Type, t.RowLength);
        long rows = t.RowCount;
        int slabRows = (int)Math.Clamp(SlabBytes / rowBytes, 1, rows);
        long need = slabRows * rowBytes;
        if (buffer is null || buffer.Length < need) buffer = new byte[need];
        byte[] buf = buffer;
        int chunkRows = (int)Math.Clamp(ChunkBytes / rowBytes, 1, slabRows);
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads <= 0 ? Environment.ProcessorCount : threads };

        for (long r0 = 0; r0 < rows; r0 += slabRows)
        {
            int n = (int)Math.Min(slabRows, rows - r0);
            int chunks = (n + chunkRows - 1) / chunkRows;
            long first = r0;
            if (chunks == 1 || options.MaxDegreeOfParallelism == 1)
            {
                fill(first, n, buf.AsSpan(0, checked((int)(n * rowBytes))));
            }
            else
            {
                Parallel.For(0, chunks, options, c =>
                {
                    int start = c * chunkRows;
                    int count = Math.Min(chunkRows, n - start);
                    fill(first + start, count, buf.AsSpan(checked((int)(start * rowBytes)), checked((int)(count * rowBytes))));
                });
            }
            writer.WriteTensorData(buf.AsSpan(0, checked((int)(n * rowBytes))));
            wrote?.Invoke(n * rowBytes);
        }
    }
}
