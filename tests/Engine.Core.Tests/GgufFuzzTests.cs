using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Tests.Shared;

namespace Engine.Core.Tests;

/// <summary>
/// Mutates GGUF headers at random (byte flips, truncations in every region, structural fields set to huge or
/// odd values) and checks the reader only ever succeeds or throws <see cref="GgufFormatException"/>, and that
/// every tensor view it hands out lies inside the file. Seeded, so a failure names a reproducible case.
/// </summary>
public unsafe class GgufFuzzTests
{
    /// <summary>Cases per file: thousands, sized to take about a second of one core on the stories260K header.</summary>
    private const int Cases = 3000;

    [RequiresSharedFact]
    public void Mutated_stories260K_headers_only_ever_fail_with_a_format_error() =>
        Fuzz(File.ReadAllBytes(SharedFixtures.PathOf("models", "stories260K.f32.gguf")), seed: 1);

    [Fact]
    public void Mutated_writer_headers_only_ever_fail_with_a_format_error()
    {
        // Works without ../shared: a small file from our own writer, with every value type and nested arrays.
        using var tmp = GgufTestFiles.Temp();
        using (var w = GgufWriter.Create(tmp.Path))
        {
            w.Metadata.Set("general.architecture", GgufValue.Of("llama"));
            w.Metadata.Set("a.u8", GgufValue.Of((byte)1));
            w.Metadata.Set("a.i16", GgufValue.Of((short)-2));
            w.Metadata.Set("a.f64", GgufValue.Of(2.5));
            w.Metadata.Set("a.bool", GgufValue.Of(true));
            w.Metadata.Set("a.strings", GgufValue.Of(new[] { "<unk>", "▁a", "b" }));
            w.Metadata.Set("a.bools", GgufValue.Of(new[] { true, false }));
            w.Metadata.Set("a.u64s", GgufValue.Of(new ulong[] { 1, 2 }));
            w.Metadata.Set("a.nested", GgufValue.OfArrays(GgufValue.Of(new[] { 1, 2 }), GgufValue.OfArrays(GgufValue.Of(new[] { "x" }))));
            w.Metadata.Set("general.alignment", GgufValue.Of(64u));
            w.AddTensor("m", GgmlType.Q8_0, [64, 2]);
            w.AddTensor("n", GgmlType.F32, [3]);
            w.AddTensor("h", GgmlType.F16, [2, 2, 2]);
            w.AddTensor("b", GgmlType.BF16, [4]);
            foreach (var t in w.Tensors) w.WriteTensorData(new byte[t.ByteSize]);
            w.Finish();
        }
        Fuzz(File.ReadAllBytes(tmp.Path), seed: 2);
    }

    [Theory]
    [InlineData(GgmlType.F32, new long[] { 1 << 20, 1 << 21, 1 << 21 })]   // 2^62 elements: 2^64 bytes wraps to 0
    [InlineData(GgmlType.F16, new long[] { 1 << 21, 1 << 21, 1 << 21 })]   // 2^63 elements
    [InlineData(GgmlType.Q8_0, new long[] { 1 << 21, 1 << 21, 1 << 20 })]
    [InlineData(GgmlType.F32, new long[] { 64, 1 << 21 })]                 // plainly past the end
    public void Tensor_sizes_that_overflow_or_overrun_are_format_errors(GgmlType type, long[] shape)
    {
        // A hand-made header in a buffer large enough that each dimension passes the per-dimension bound.
        var ms = new MemoryStream();
        var bw = new BinaryWriter(ms);
        bw.Write(GgufFile.Magic); bw.Write(3u); bw.Write(1ul); bw.Write(0ul);
        bw.Write(3ul); bw.Write("big"u8); bw.Write((uint)shape.Length);
        foreach (long d in shape) bw.Write((ulong)d);
        bw.Write((uint)type); bw.Write(0ul);
        var bytes = new byte[300_000];
        ms.ToArray().CopyTo(bytes, 0);
        GgufFormatException? error = null;
        fixed (byte* p = bytes)
        {
            try { GgufFile.FromMemory(p, bytes.Length, "big.gguf").Dispose(); }
            catch (GgufFormatException e) { error = e; }
        }
        Assert.NotNull(error);
        Assert.Equal("big", error.Field);
    }

    private static void Fuzz(byte[] pristine, int seed)
    {
        var fields = FieldMap(pristine, out long dataOffset);
        var rng = new Random(seed);
        byte* mem = (byte*)NativeMemory.Alloc((nuint)pristine.Length);
        try
        {
            var span = new Span<byte>(mem, pristine.Length);
            pristine.CopyTo(span);
            int ok = 0, rejected = 0;
            for (int c = 0; c < Cases; c++)
            {
                string what = Mutate(span, pristine, fields, dataOffset, rng, out long length);
                try
                {
                    using var f = GgufFile.FromMemory(mem, length, "fuzz");
                    Touch(f, mem, length, $"case {c} ({what})");
                    ok++;
                }
                catch (GgufFormatException)
                {
                    rejected++;
                }
                catch (Exception e) when (e is not Xunit.Sdk.XunitException)
                {
                    Assert.Fail($"case {c} (seed {seed}, {what}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
                pristine.AsSpan(0, (int)dataOffset).CopyTo(span); // undo the header mutation
            }
            Assert.True(rejected > Cases / 4, $"only {rejected} of {Cases} mutations were rejected: the mutations are too weak");
            Assert.True(ok > 0, "no mutation was accepted: the checks may be too strict or the pristine file bad");
        }
        finally
        {
            NativeMemory.Free(mem);
        }
    }

    /// <summary>Everything a caller would touch; views must lie inside the buffer.</summary>
    private static void Touch(GgufFile f, byte* mem, long length, string what)
    {
        foreach (var (key, value) in f.Metadata.Entries) _ = value.ToString();
        _ = f.Metadata.GetStringOrNull("general.architecture");
        foreach (var t in f.Tensors)
        {
            if (!GgmlTypeInfo.IsSupported(t.Type)) continue;
            var view = f.GetTensor(t.Name);
            long start = view.Data - mem;
            Assert.True(start >= 0 && view.ByteLength >= 0 && start + view.ByteLength <= length,
                $"{what}: tensor {t.Name} [{start}, +{view.ByteLength}) lies outside the {length} bytes");
            _ = view.Rows;
            _ = view.Cols;
        }
    }

    private enum Width { U32, U64 }

    /// <summary>Offsets of the structural fields (counts, lengths, types, dims, offsets) found by walking the header.</summary>
    private static List<(int Offset, Width Width, string Name)> FieldMap(byte[] b, out long dataOffset)
    {
        var fields = new List<(int, Width, string)>();
        int p = 0;
        uint U32(string name) { fields.Add((p, Width.U32, name)); uint v = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p)); p += 4; return v; }
        ulong U64(string name) { fields.Add((p, Width.U64, name)); ulong v = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(p)); p += 8; return v; }
        void Str(string name) { int n = (int)U64(name + " length"); p += n; }
        void Value(uint type, string name)
        {
            switch ((GgufValueType)type)
            {
                case GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool: p += 1; break;
                case GgufValueType.UInt16 or GgufValueType.Int16: p += 2; break;
                case GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32: p += 4; break;
                case GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64: p += 8; break;
                case GgufValueType.String: Str(name); break;
                case GgufValueType.Array:
                    uint et = U32(name + " array type");
                    ulong n = U64(name + " array length");
                    for (ulong i = 0; i < n; i++) Value(et, name);
                    break;
                default: throw new InvalidOperationException($"pristine file has value type {type}");
            }
        }
        U32("magic");
        U32("version");
        ulong nt = U64("tensor_count");
        ulong nkv = U64("kv_count");
        for (ulong i = 0; i < nkv; i++)
        {
            Str("key");
            Value(U32("value type"), "value");
        }
        for (ulong i = 0; i < nt; i++)
        {
            Str("tensor name");
            uint nd = U32("n_dims");
            for (uint d = 0; d < nd; d++) U64("dim");
            U32("tensor type");
            U64("tensor offset");
        }
        fixed (byte* pb = b)
        {
            using var f = GgufFile.FromMemory(pb, b.Length); // the pristine file is valid
            dataOffset = f.DataOffset;
        }
        return fields;
    }

    private static readonly ulong[] Interesting64 =
    [
        0, 1, 2, 3, 4, 5, 7, 8, 12, 13, 24, 31, 32, 33, 255, 256, 65535, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000,
        0x7FFFFFFFFFFFFFFF, 0x8000000000000000, ulong.MaxValue, ulong.MaxValue - 1, 1UL << 40, 1UL << 62,
    ];

    private static readonly uint[] Interesting32 =
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 24, 30, 31, 64, 255, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x02000000, 0x03000000,
    ];

    /// <summary>Applies one random mutation; returns its description and the length to parse.</summary>
    private static string Mutate(Span<byte> mem, byte[] pristine, List<(int Offset, Width Width, string Name)> fields, long dataOffset, Random rng, out long length)
    {
        length = pristine.Length;
        int header = (int)dataOffset;
        switch (rng.Next(6))
        {
            case 0: // a few random bytes anywhere in the header
            {
                int n = rng.Next(1, 5);
                for (int i = 0; i < n; i++) mem[rng.Next(header)] = (byte)rng.Next(256);
                return $"{n} random bytes";
            }
            case 1: // single bit flips
            {
                int n = rng.Next(1, 4);
                for (int i = 0; i < n; i++) mem[rng.Next(header)] ^= (byte)(1 << rng.Next(8));
                return $"{n} bit flips";
            }
            case 2: // truncation just around a structural field, or anywhere
            {
                if (rng.Next(4) == 0)
                {
                    length = rng.NextInt64(0, pristine.Length);
                    return $"truncated at {length}";
                }
                var f = fields[rng.Next(fields.Count)];
                length = Math.Clamp(f.Offset + rng.Next(-2, 10), 0, pristine.Length - 1);
                return $"truncated at {length} near {f.Name}";
            }
            case 3: // a truncation of the data section
            {
                length = rng.NextInt64(header, pristine.Length);
                return $"data truncated at {length}";
            }
            default: // a structural field set to an odd value, sometimes with a truncation too
            {
                var f = fields[rng.Next(fields.Count)];
                string what;
                if (f.Width == Width.U64)
                {
                    ulong v = rng.Next(3) == 0 ? (ulong)rng.NextInt64() : Interesting64[rng.Next(Interesting64.Length)];
                    if (rng.Next(5) == 0) v = (ulong)pristine.Length - (ulong)rng.Next(0, 64);
                    BinaryPrimitives.WriteUInt64LittleEndian(mem[f.Offset..], v);
                    what = $"{f.Name} at {f.Offset} = {v}";
                }
                else
                {
                    uint v = rng.Next(4) == 0 ? (uint)rng.Next() : Interesting32[rng.Next(Interesting32.Length)];
                    BinaryPrimitives.WriteUInt32LittleEndian(mem[f.Offset..], v);
                    what = $"{f.Name} at {f.Offset} = {v}";
                }
                if (rng.Next(4) == 0)
                {
                    length = rng.NextInt64(0, pristine.Length);
                    what += $", truncated at {length}";
                }
                return what;
            }
        }
    }
}
