using Engine.Core.Gguf;
using Engine.Tests.Shared;

namespace Engine.Core.Tests;

public class GgufWriterTests
{
    /// <summary>One key per scalar type, one array per element type (one of them empty), and nested arrays.</summary>
    private static GgufMetadata EveryValueType()
    {
        var m = new GgufMetadata();
        m.Set("t.u8", GgufValue.Of((byte)200));
        m.Set("t.i8", GgufValue.Of((sbyte)-100));
        m.Set("t.u16", GgufValue.Of((ushort)60000));
        m.Set("t.i16", GgufValue.Of((short)-30000));
        m.Set("t.u32", GgufValue.Of(4_000_000_000u));
        m.Set("t.i32", GgufValue.Of(-2_000_000_000));
        m.Set("t.f32", GgufValue.Of(3.25e-7f));
        m.Set("t.bool", GgufValue.Of(true));
        m.Set("t.bool_false", GgufValue.Of(false));
        m.Set("t.string", GgufValue.Of("héllo ▁wörld \u0000 end"));
        m.Set("t.string_empty", GgufValue.Of(""));
        m.Set("t.u64", GgufValue.Of(18_000_000_000_000_000_000ul));
        m.Set("t.i64", GgufValue.Of(-9_000_000_000_000_000_000L));
        m.Set("t.f64", GgufValue.Of(-1.0 / 3.0));
        m.Set("a.u8", GgufValue.Of(new byte[] { 0, 1, 255 }));
        m.Set("a.i8", GgufValue.Of(new sbyte[] { -128, 0, 127 }));
        m.Set("a.u16", GgufValue.Of(new ushort[] { 0, 65535 }));
        m.Set("a.i16", GgufValue.Of(new short[] { -32768, 32767 }));
        m.Set("a.u32", GgufValue.Of(new uint[] { 1, uint.MaxValue }));
        m.Set("a.i32", GgufValue.Of(new int[] { int.MinValue, -1, 0, int.MaxValue }));
        m.Set("a.f32", GgufValue.Of(new float[] { 0f, -0f, float.NaN, float.PositiveInfinity, 1e-40f }));
        m.Set("a.bool", GgufValue.Of(new bool[] { true, false, true }));
        m.Set("a.string", GgufValue.Of(new string[] { "<unk>", "", "▁the", "日本" }));
        m.Set("a.u64", GgufValue.Of(new ulong[] { ulong.MaxValue }));
        m.Set("a.i64", GgufValue.Of(new long[] { long.MinValue, 7 }));
        m.Set("a.f64", GgufValue.Of(new double[] { double.Epsilon, -2.5 }));
        m.Set("a.empty_f32", GgufValue.Of(Array.Empty<float>()));
        m.Set("a.empty_string", GgufValue.Of(Array.Empty<string>()));
        m.Set("n.ints", GgufValue.OfArrays(GgufValue.Of(new[] { 1, 2 }), GgufValue.Of(Array.Empty<int>()), GgufValue.Of(new[] { 3 })));
        m.Set("n.mixed", GgufValue.OfArrays(GgufValue.Of(new[] { "a", "b" }), GgufValue.Of(new[] { 1.5f })));
        m.Set("n.empty", GgufValue.OfArrays());
        m.Set("n.deep", GgufValue.OfArrays(GgufValue.OfArrays(GgufValue.OfArrays(GgufValue.Of(new ulong[] { 9, 10 })))));
        return m;
    }

    private static byte[] RandomBytes(Random rng, long n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    private static (string Name, GgmlType Type, long[] Shape)[] SomeTensors() =>
    [
        ("a.f32", GgmlType.F32, [7, 3]),
        ("b.f16", GgmlType.F16, [5]),
        ("c.q8_0", GgmlType.Q8_0, [64, 3]),
        ("d.bf16", GgmlType.BF16, [3, 2, 2, 1]),
        ("e.f32", GgmlType.F32, [1]),
    ];

    private static Dictionary<string, byte[]> WriteSample(string path, GgufMetadata metadata, uint version = 3, int? alignment = null, int chunk = 0)
    {
        var rng = new Random(42);
        var data = new Dictionary<string, byte[]>();
        using var w = GgufWriter.Create(path, version);
        foreach (var (k, v) in metadata.Entries) w.Metadata.Set(k, v);
        if (alignment is int a) w.Alignment = a;
        foreach (var (name, type, shape) in SomeTensors())
        {
            var info = w.AddTensor(name, type, shape);
            data[name] = RandomBytes(rng, info.ByteSize);
        }
        foreach (var t in w.Tensors)
        {
            if (chunk == 0)
            {
                w.WriteTensor(t.Name, data[t.Name]);
            }
            else
            {
                for (int i = 0; i < data[t.Name].Length; i += chunk)
                    w.WriteTensorData(data[t.Name].AsSpan(i, Math.Min(chunk, data[t.Name].Length - i)));
            }
        }
        w.Finish();
        Assert.Equal(w.ExpectedLength, new FileInfo(path).Length);
        return data;
    }

    [Fact]
    public void Every_value_type_and_tensor_round_trips_through_the_reader()
    {
        using var tmp = GgufTestFiles.Temp();
        var metadata = EveryValueType();
        var data = WriteSample(tmp.Path, metadata);

        using var f = GgufFile.Open(tmp.Path);
        Assert.Equal(3u, f.Version);
        Assert.Equal(GgufFile.DefaultAlignment, f.Alignment);
        GgufTestFiles.AssertSameMetadata(metadata, f.Metadata);
        Assert.Equal(SomeTensors().Select(t => t.Name), f.Tensors.Select(t => t.Name));
        foreach (var (name, type, shape) in SomeTensors())
        {
            var info = f.GetTensorInfo(name);
            Assert.Equal(type, info.Type);
            Assert.Equal(shape, info.Shape);
            Assert.Equal(0ul, info.Offset % 32);
            Assert.Equal(data[name], f.GetTensor(name).Bytes.ToArray());
        }
        Assert.Equal(0, f.DataOffset % 32);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(4096)]
    public void General_alignment_places_the_data_section_and_every_tensor(int alignment)
    {
        using var tmp = GgufTestFiles.Temp();
        var data = WriteSample(tmp.Path, new GgufMetadata(), alignment: alignment);
        using var f = GgufFile.Open(tmp.Path);
        Assert.Equal(alignment, f.Alignment);
        Assert.Equal((uint)alignment, f.Metadata.Get("general.alignment").Value);
        Assert.Equal(0, f.DataOffset % alignment);
        foreach (var t in f.Tensors)
        {
            Assert.Equal(0ul, t.Offset % (ulong)alignment);
            Assert.Equal(data[t.Name], f.GetTensor(t.Name).Bytes.ToArray());
        }
        Assert.Equal(0, f.Length % alignment);
    }

    [Fact]
    public void Version_2_files_are_written_and_read_back()
    {
        using var tmp = GgufTestFiles.Temp();
        var metadata = EveryValueType();
        var data = WriteSample(tmp.Path, metadata, version: 2);
        using var f = GgufFile.Open(tmp.Path);
        Assert.Equal(2u, f.Version);
        GgufTestFiles.AssertSameMetadata(metadata, f.Metadata);
        foreach (var t in f.Tensors) Assert.Equal(data[t.Name], f.GetTensor(t.Name).Bytes.ToArray());
    }

    [Fact]
    public void Hand_made_version_2_file_is_read()
    {
        // Built byte by byte, independent of the writer: one u32 key, one F32 tensor of 2 elements.
        var ms = new MemoryStream();
        var bw = new BinaryWriter(ms);
        bw.Write(GgufFile.Magic); bw.Write(2u); bw.Write(1ul); bw.Write(1ul);
        bw.Write(3ul); bw.Write("k.x"u8); bw.Write((uint)GgufValueType.UInt32); bw.Write(77u);
        bw.Write(1ul); bw.Write("w"u8); bw.Write(1u); bw.Write(2ul); bw.Write((uint)GgmlType.F32); bw.Write(0ul);
        while (ms.Length % 32 != 0) bw.Write((byte)0);
        bw.Write(1.5f); bw.Write(-2f);
        using var tmp = GgufTestFiles.Temp();
        File.WriteAllBytes(tmp.Path, ms.ToArray());

        using var f = GgufFile.Open(tmp.Path);
        Assert.Equal(2u, f.Version);
        Assert.Equal(77, f.Metadata.GetInteger("k.x"));
        var t = f.GetTensor("w");
        Assert.Equal(new[] { 1.5f, -2f }, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Bytes).ToArray());
    }

    [Fact]
    public void Writing_in_pieces_gives_the_same_file_as_whole_tensors()
    {
        using var whole = GgufTestFiles.Temp();
        using var pieces = GgufTestFiles.Temp();
        WriteSample(whole.Path, EveryValueType());
        WriteSample(pieces.Path, EveryValueType(), chunk: 5);
        Assert.Equal(File.ReadAllBytes(whole.Path), File.ReadAllBytes(pieces.Path));
    }

    [RequiresSharedTheory]
    [InlineData("stories260K.f32.gguf")]
    [InlineData("stories260K.q8_0.gguf")]
    public void Copying_a_llama_cpp_file_through_the_writer_reproduces_it_byte_for_byte(string fixture)
    {
        string src = SharedFixtures.PathOf("models", fixture);
        using var tmp = GgufTestFiles.Temp();
        using (var f = GgufFile.Open(src))
        using (var w = GgufWriter.Create(tmp.Path, f.Version))
        {
            foreach (var (k, v) in f.Metadata.Entries) w.Metadata.Set(k, v);
            foreach (var t in f.Tensors) w.AddTensor(t.Name, t.Type, t.Shape);
            foreach (var t in f.Tensors) w.WriteTensor(t.Name, f.GetTensor(t.Name).Bytes);
            w.Finish();
        }
        Assert.Equal(File.ReadAllBytes(src), File.ReadAllBytes(tmp.Path));
    }

    [Fact]
    public void Misuse_is_refused_with_a_clear_error()
    {
        using var tmp = GgufTestFiles.Temp();
        using (var w = GgufWriter.Create(tmp.Path))
        {
            w.AddTensor("a", GgmlType.F32, [4]);
            w.AddTensor("b", GgmlType.F32, [4]);
            Assert.Throws<ArgumentException>(() => w.AddTensor("a", GgmlType.F32, [4]));
            Assert.Throws<ArgumentException>(() => w.AddTensor("q", GgmlType.Q8_0, [33]));
            Assert.Throws<ArgumentException>(() => w.AddTensor("z", GgmlType.F32, [0]));
            Assert.Throws<ArgumentException>(() => w.AddTensor("k", GgmlType.Q4_K, [256]));
            Assert.Throws<InvalidOperationException>(() => w.WriteTensor("b", new byte[16]));
            Assert.Throws<ArgumentException>(() => w.WriteTensor("a", new byte[15]));
            Assert.Throws<InvalidOperationException>(() => w.AddTensor("c", GgmlType.F32, [4]));
            w.WriteTensor("a", new byte[16]);
            Assert.Throws<InvalidOperationException>(() => w.Finish());
            Assert.Throws<InvalidOperationException>(() => w.WriteTensorData(new byte[17]));
        }
        Assert.False(File.Exists(tmp.Path), "an unfinished file is deleted");

        using var w2 = new GgufWriter(new MemoryStream());
        w2.Metadata.Set("bad", new GgufValue(GgufValueType.UInt32, 5)); // int, not uint
        Assert.Throws<ArgumentException>(() => w2.WriteHeader());
    }
}
