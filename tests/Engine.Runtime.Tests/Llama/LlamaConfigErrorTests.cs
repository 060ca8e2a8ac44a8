using System.Buffers.Binary;
using System.Text;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;
using Engine.Runtime.Llama;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Llama;

/// <summary>
/// A bad config is an error naming the key. The bad files are copies of the stories260K fixture with
/// bytes of the header patched in place (same lengths, so the rest of the file stays valid).
/// </summary>
public sealed class LlamaConfigErrorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("engine-llama-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RequiresSharedFact]
    public void Fixture_config_reads_the_stories260K_shape()
    {
        using var file = GgufFile.Open(SharedFixtures.PathOf("models", Stories260KReference.F32File));
        var c = LlamaConfig.FromGguf(file);
        Assert.Equal(("llama", 64, 5, 172, 8, 4, 8, 32, 512, 128), (c.Architecture, c.Dim, c.Layers, c.FfnDim, c.Heads, c.KvHeads, c.HeadDim, c.KvDim, c.VocabSize, c.ContextLength));
        Assert.Equal(10000f, c.RopeFreqBase); // key absent: llama.cpp's default
        Assert.Equal(1e-5f, c.RmsEps, 1e-9f);
        Assert.Equal(Engine.Core.Backend.RopeStyle.Normal, c.RopeStyle);
    }

    [RequiresSharedFact]
    public void Missing_block_count_is_an_error_naming_the_key()
    {
        string path = Patched(b => ReplaceAscii(b, "llama.block_count", "llama.block_counT"));
        var e = Assert.Throws<GgufFormatException>(() => Load(path));
        Assert.Equal("llama.block_count", e.Field);
        Assert.Contains("llama.block_count", e.Message);
        Assert.Contains(path, e.Message);
    }

    [RequiresSharedFact]
    public void Missing_embedding_length_is_an_error_naming_the_key()
    {
        string path = Patched(b => ReplaceAscii(b, "llama.embedding_length", "llama.embedding_lengtX"));
        Assert.Equal("llama.embedding_length", Assert.Throws<GgufFormatException>(() => Load(path)).Field);
    }

    [RequiresSharedFact]
    public void Unsupported_architecture_is_an_error_naming_the_key_and_value()
    {
        // The value string "llama" of general.architecture follows its key; patch only that occurrence.
        string path = Patched(b =>
        {
            int key = IndexOf(b, System.Text.Encoding.ASCII.GetBytes("general.architecture"));
            int value = IndexOf(b, System.Text.Encoding.ASCII.GetBytes("llama"), key + "general.architecture".Length);
            System.Text.Encoding.ASCII.GetBytes("gpt_x").CopyTo(b, value);
        });
        var e = Assert.Throws<GgufFormatException>(() => Load(path));
        Assert.Equal("general.architecture", e.Field);
        Assert.Contains("gpt_x", e.Message);
    }

    [RequiresSharedFact]
    public void Rope_dimension_count_other_than_head_dim_is_a_clear_error()
    {
        string path = Patched(b => SetUInt32Value(b, "llama.rope.dimension_count", 4));
        var e = Assert.Throws<GgufFormatException>(() => Load(path));
        Assert.Equal("llama.rope.dimension_count", e.Field);
        Assert.Contains("head dimension 8", e.Message);
    }

    [RequiresSharedFact]
    public void Heads_that_do_not_divide_the_kv_heads_are_a_clear_error()
    {
        string path = Patched(b => SetUInt32Value(b, "llama.attention.head_count_kv", 3));
        Assert.Equal("llama.attention.head_count_kv", Assert.Throws<GgufFormatException>(() => Load(path)).Field);
    }

    [RequiresSharedFact]
    public void A_weight_shape_that_contradicts_the_config_names_the_tensor()
    {
        // feed_forward_length 172 → 171: blk.0.ffn_gate.weight [64, 172] no longer matches.
        string path = Patched(b => SetUInt32Value(b, "llama.feed_forward_length", 171));
        var e = Assert.Throws<GgufFormatException>(() => Load(path));
        Assert.StartsWith("blk.0.ffn_", e.Field);
        Assert.Contains("[64, 171]", e.Message);
    }

    private static void Load(string path)
    {
        using var backend = new ReferenceBackend();
        using var model = LlamaModel.Load(path, backend);
    }

    private string Patched(Action<byte[]> patch)
    {
        var bytes = File.ReadAllBytes(SharedFixtures.PathOf("models", Stories260KReference.F32File));
        patch(bytes);
        string path = Path.Combine(_dir, $"patched-{Guid.NewGuid():N}.gguf");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void ReplaceAscii(byte[] b, string from, string to)
    {
        Assert.Equal(from.Length, to.Length);
        System.Text.Encoding.ASCII.GetBytes(to).CopyTo(b, IndexOf(b, System.Text.Encoding.ASCII.GetBytes(from)));
    }

    /// <summary>A uint32 metadata value: the key's bytes, then its type (u32 = 4), then the value.</summary>
    private static void SetUInt32Value(byte[] b, string key, uint value)
    {
        int at = IndexOf(b, System.Text.Encoding.ASCII.GetBytes(key)) + key.Length;
        Assert.Equal((uint)GgufValueType.UInt32, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at)));
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 4), value);
    }

    private static int IndexOf(byte[] b, byte[] what, int from = 0)
    {
        int i = b.AsSpan(from).IndexOf(what);
        Assert.True(i >= 0, $"'{System.Text.Encoding.ASCII.GetString(what)}' not found in the fixture");
        return from + i;
    }
}
