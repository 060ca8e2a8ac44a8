using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Core.Tensors;

namespace Engine.Core.Quant;

/// <summary>What <see cref="GgufQuantizer.Quantize"/> did.</summary>
/// <param name="InputBytes">Size of the input file.</param>
/// <param name="OutputBytes">Size of the output file.</param>
/// <param name="TensorCount">Tensors written.</param>
/// <param name="Quantized">Tensors written as the target type.</param>
/// <param name="KeptF32">Tensors written as F32 (1-D, rows not a multiple of the block size, or not 2-D).</param>
public sealed record QuantizeSummary(long InputBytes, long OutputBytes, int TensorCount, int Quantized, int KeptF32);

/// <summary>
/// Converts a GGUF model to Q8_0 the way llama.cpp's quantizer does for <c>--type q8_0</c>: every 2-D tensor
/// whose rows are a multiple of 32 becomes Q8_0 (bytes equal to <c>quantize_row_q8_0_ref</c>,
/// <see cref="Q8_0.QuantizeRow(ReadOnlySpan{float}, Span{BlockQ8_0})"/>), including <c>token_embd</c>
/// and the output head; every other tensor (norms, rows of 172, …) is written as F32, converted from
/// F16/BF16 when needed. Metadata is copied in order, with <c>general.file_type</c> = 7
/// (LLAMA_FTYPE_MOSTLY_Q8_0) and <c>general.quantization_version</c> = 2 (GGML_QNT_VERSION).
/// The input is memory-mapped and the output streamed tensor by tensor.
/// </summary>
public static class GgufQuantizer
{
    /// <summary>llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0 (llama.h), the value of <c>general.file_type</c>.</summary>
    public const uint FileTypeMostlyQ8_0 = 7;

    /// <summary>ggml's GGML_QNT_VERSION, written by llama.cpp's quantizer as <c>general.quantization_version</c>.</summary>
    public const uint QuantizationVersion = 2;

    /// <summary>The type a tensor of this shape gets when the file is quantized to <paramref name="target"/> (Q8_0).</summary>
    public static GgmlType TypeFor(ReadOnlySpan<long> shape, GgmlType target = GgmlType.Q8_0)
    {
        if (target != GgmlType.Q8_0) throw new ArgumentException($"quantizing to {target} is not supported (only Q8_0)", nameof(target));
        return shape.Length == 2 && shape[0] % BlockQ8_0.Size == 0 ? GgmlType.Q8_0 : GgmlType.F32;
    }

    /// <summary>
    /// Quantizes <paramref name="inputPath"/> into <paramref name="outputPath"/> (created or overwritten).
    /// Throws <see cref="GgufFormatException"/> for a bad input (naming the file) and
    /// <see cref="ArgumentException"/> when the output is the input.
    /// </summary>
    /// <param name="inputPath">A GGUF file with F32, F16, BF16 or Q8_0 tensors.</param>
    /// <param name="outputPath">The file to write.</param>
    /// <param name="target">The quantized type: only <see cref="GgmlType.Q8_0"/>.</param>
    /// <param name="progress">Told after each slab of tensor data (on the calling thread).</param>
    /// <param name="threads">Worker threads for the row conversion (0: one per core).</param>
    public static QuantizeSummary Quantize(string inputPath, string outputPath, GgmlType target = GgmlType.Q8_0,
        IProgress<GgufWriteProgress>? progress = null, int threads = 0)
    {
        if (target != GgmlType.Q8_0) throw new ArgumentException($"quantizing to {target} is not supported (only Q8_0)", nameof(target));
        if (string.Equals(Path.GetFullPath(inputPath), Path.GetFullPath(outputPath), StringComparison.Ordinal))
            throw new ArgumentException($"{outputPath}: the output must not be the input file", nameof(outputPath));

        using var input = GgufFile.Open(inputPath);
        // Check every tensor before writing anything, so a bad input leaves no output behind.
        foreach (var t in input.Tensors) input.GetTensor(t.Name);

        using var w = GgufWriter.Create(outputPath, input.Version);
        foreach (var (key, value) in input.Metadata.Entries) w.Metadata.Set(key, value);
        w.Metadata.Set("general.file_type", GgufValue.Of(FileTypeMostlyQ8_0));
        w.Metadata.Set("general.quantization_version", GgufValue.Of(QuantizationVersion));

        int quantized = 0, kept = 0;
        foreach (var t in input.Tensors)
        {
            var type = TypeFor(t.Shape, target);
            // A tensor already in Q8_0 stays as it is (its bytes are copied).
            if (t.Type == GgmlType.Q8_0 && t.Shape[0] % BlockQ8_0.Size == 0) type = GgmlType.Q8_0;
            w.AddTensor(t.Name, type, t.Shape);
            if (type == GgmlType.F32) kept++; else quantized++;
        }
        w.WriteHeader();

        long total = w.Tensors.Sum(t => t.ByteSize), done = 0;
        byte[]? buffer = null;
        for (int i = 0; i < w.Tensors.Count; i++)
        {
            var outInfo = w.Tensors[i];
            var src = input.GetTensor(outInfo.Name);
            progress?.Report(new(i, w.Tensors.Count, outInfo.Name, done, total));
            int index = i;
            RowParallel.Write(w, outInfo, threads, ref buffer, (first, count, dst) => ConvertRows(src, outInfo.Type, first, count, dst),
                bytes =>
                {
                    done += bytes;
                    progress?.Report(new(index, w.Tensors.Count, outInfo.Name, done, total));
                });
        }
        w.Finish();
        long outBytes = w.BytesWritten;
        return new QuantizeSummary(input.Length, outBytes, w.Tensors.Count, quantized, kept);
    }

    /// <summary>Converts rows <c>[first, first + count)</c> of <paramref name="src"/> to <paramref name="type"/> into <paramref name="dst"/>.</summary>
    private static void ConvertRows(TensorView src, GgmlType type, long first, int count, Span<byte> dst)
    {
        int cols = src.Cols;
        long outRowBytes = GgmlTypeInfo.RowBytes(type, cols);
        if (src.Type == type)
        {
            // Same type (F32 kept, Q8_0 already): a plain copy.
            for (int r = 0; r < count; r++) src.Row(checked((int)(first + r))).CopyTo(dst.Slice((int)(r * outRowBytes), (int)outRowBytes));
            return;
        }
        float[]? rented = null;
        Span<float> row = cols <= 4096 ? stackalloc float[cols] : (rented = System.Buffers.ArrayPool<float>.Shared.Rent(cols)).AsSpan(0, cols);
        try
        {
            for (int r = 0; r < count; r++)
            {
                var outRow = dst.Slice((int)(r * outRowBytes), (int)outRowBytes);
                scoped ReadOnlySpan<float> x;
                if (src.Type == GgmlType.F32)
                {
                    x = MemoryMarshal.Cast<byte, float>(src.Row(checked((int)(first + r))));
                }
                else
                {
                    RowDecoding.ToFloat(src.Type, src.Row(checked((int)(first + r))), row);
                    x = row;
                }
                if (type == GgmlType.Q8_0) Q8_0.QuantizeRow(x, outRow);
                else x.CopyTo(MemoryMarshal.Cast<byte, float>(outRow)); // F32
            }
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }
}
