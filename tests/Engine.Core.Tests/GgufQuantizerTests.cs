using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Tests.Shared;

namespace Engine.Core.Tests;

public class GgufQuantizerTests
{
    [RequiresSharedFact]
    public void Quantizing_stories260K_f32_gives_llama_cpp_q8_0_tensor_for_tensor()
    {
        using var tmp = GgufTestFiles.Temp("q8.gguf");
        var summary = GgufQuantizer.Quantize(SharedFixtures.PathOf("models", "stories260K.f32.gguf"), tmp.Path, threads: 2);

        using var expected = GgufFile.Open(SharedFixtures.PathOf("models", "stories260K.q8_0.gguf"));
        using var actual = GgufFile.Open(tmp.Path);
        Assert.Equal(expected.Tensors.Select(t => t.Name), actual.Tensors.Select(t => t.Name));
        foreach (var e in expected.Tensors)
        {
            var a = actual.GetTensorInfo(e.Name);
            Assert.True(e.Type == a.Type, $"{e.Name}: {a.Type}, llama.cpp wrote {e.Type}");
            Assert.Equal(e.Shape, a.Shape);
            Assert.True(expected.GetTensor(e.Name).Bytes.SequenceEqual(actual.GetTensor(e.Name).Bytes), $"{e.Name}: bytes differ from llama.cpp's");
        }
        // llama.cpp made token_embd Q8_0 as well: the rule has no exception for it.
        Assert.Equal(GgmlType.Q8_0, actual.GetTensorInfo("token_embd.weight").Type);
        Assert.Equal(GgufQuantizer.FileTypeMostlyQ8_0, actual.Metadata.Get("general.file_type").Value);
        Assert.Equal(expected.Tensors.Count, summary.TensorCount);
        Assert.Equal(new FileInfo(tmp.Path).Length, summary.OutputBytes);
        Assert.Equal(5 + 5 * 2 + 1, summary.KeptF32); // 5 ffn_down, 10 block norms, output_norm
    }

    [RequiresSharedFact]
    public void Quantizing_copies_the_metadata()
    {
        using var tmp = GgufTestFiles.Temp("q8.gguf");
        string src = SharedFixtures.PathOf("models", "stories260K.f32.gguf");
        GgufQuantizer.Quantize(src, tmp.Path, threads: 1);
        using var input = GgufFile.Open(src);
        using var output = GgufFile.Open(tmp.Path);
        foreach (var (key, value) in input.Metadata.Entries) GgufTestFiles.AssertSameValue(key, value, output.Metadata.Get(key));
        Assert.Equal(input.Metadata.Count + 2, output.Metadata.Count); // + file_type, quantization_version
    }

    [Fact]
    public void F16_and_BF16_inputs_are_quantized_or_widened_to_f32()
    {
        var rng = new Random(7);
        float[] mat = Enumerable.Range(0, 64 * 3).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(); // [64, 3]
        float[] norm = Enumerable.Range(0, 40).Select(_ => (float)(rng.NextDouble() + 0.5)).ToArray(); // [40]
        var matF16 = mat.Select(x => (Half)x).ToArray();
        var normBf16 = norm.Select(Tensors.RowDecoding.ToBFloat16).ToArray();
        var oddF16 = norm.Select(x => (Half)x).ToArray(); // [40, 1] rows of 40: not a multiple of 32

        using var src = GgufTestFiles.Temp("in.gguf");
        using var dst = GgufTestFiles.Temp("out.gguf");
        using (var w = GgufWriter.Create(src.Path))
        {
            w.Metadata.Set("general.architecture", GgufValue.Of("llama"));
            w.AddTensor("m", GgmlType.F16, [64, 3]);
            w.AddTensor("n", GgmlType.BF16, [40]);
            w.AddTensor("o", GgmlType.F16, [40, 1]);
            w.WriteTensor("m", MemoryMarshal.AsBytes(matF16.AsSpan()));
            w.WriteTensor("n", MemoryMarshal.AsBytes(normBf16.AsSpan()));
            w.WriteTensor("o", MemoryMarshal.AsBytes(oddF16.AsSpan()));
            w.Finish();
        }
        GgufQuantizer.Quantize(src.Path, dst.Path);

        using var f = GgufFile.Open(dst.Path);
        Assert.Equal(GgmlType.Q8_0, f.GetTensorInfo("m").Type);
        var expectedQ = new byte[3 * 2 * BlockQ8_0.ByteSize];
        for (int r = 0; r < 3; r++)
            Q8_0.QuantizeRow(matF16.AsSpan(r * 64, 64).ToArray().Select(h => (float)h).ToArray(), expectedQ.AsSpan(r * 68, 68));
        Assert.Equal(expectedQ, f.GetTensor("m").Bytes.ToArray());

        Assert.Equal(GgmlType.F32, f.GetTensorInfo("n").Type);
        var n = MemoryMarshal.Cast<byte, float>(f.GetTensor("n").Bytes).ToArray();
        Assert.Equal(normBf16.Select(b => BitConverter.Int32BitsToSingle(b << 16)), n);
        Assert.Equal(GgmlType.F32, f.GetTensorInfo("o").Type);
        Assert.Equal(oddF16.Select(h => (float)h), MemoryMarshal.Cast<byte, float>(f.GetTensor("o").Bytes).ToArray());
    }

    [Fact]
    public void A_corrupt_input_is_a_format_error_and_leaves_no_output()
    {
        using var src = GgufTestFiles.Temp("bad.gguf");
        using var dst = GgufTestFiles.Temp("out.gguf");
        File.WriteAllBytes(src.Path, "GGUF\u0003\0\0\0garbage-garbage-garbage-garbage"u8.ToArray());
        Assert.Throws<GgufFormatException>(() => GgufQuantizer.Quantize(src.Path, dst.Path));
        Assert.False(File.Exists(dst.Path));
        Assert.Throws<ArgumentException>(() => GgufQuantizer.Quantize(src.Path, src.Path));
    }
}
