using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Core.Tensors;

namespace Engine.Core.Tests;

public class SyntheticModelTests
{
    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.F16)]
    public void Tiny_model_round_trips_with_llama_metadata_and_shapes(GgmlType type)
    {
        var c = SyntheticModelConfig.Tiny;
        using var tmp = GgufTestFiles.Temp();
        long size = SyntheticModel.Write(tmp.Path, c, seed: 1, type);

        using var f = GgufFile.Open(tmp.Path);
        Assert.Equal(size, f.Length);
        Assert.Equal(3u, f.Version);
        var m = f.Metadata;
        Assert.Equal("llama", f.Architecture);
        Assert.Equal(c.Name, m.GetString("general.name"));
        Assert.Equal(c.ContextLength, m.GetInteger("llama.context_length"));
        Assert.Equal(64, m.GetInteger("llama.embedding_length"));
        Assert.Equal(2, m.GetInteger("llama.block_count"));
        Assert.Equal(128, m.GetInteger("llama.feed_forward_length"));
        Assert.Equal(4, m.GetInteger("llama.attention.head_count"));
        Assert.Equal(2, m.GetInteger("llama.attention.head_count_kv"));
        Assert.Equal(16, m.GetInteger("llama.rope.dimension_count"));
        Assert.Equal(512, m.GetInteger("llama.vocab_size"));
        Assert.Equal(10000f, m.GetFloat("llama.rope.freq_base"));
        Assert.Equal(1e-5f, m.GetFloat("llama.attention.layer_norm_rms_epsilon"));
        Assert.Equal(32, m.GetInteger("general.alignment"));
        Assert.Equal(type switch { GgmlType.Q8_0 => 7, GgmlType.F16 => 1, _ => 0 }, m.GetInteger("general.file_type"));
        Assert.Equal("llama", m.GetString("tokenizer.ggml.model"));
        Assert.True(m.GetBool("tokenizer.ggml.add_bos_token", false));
        Assert.Equal(1, m.GetInteger("tokenizer.ggml.bos_token_id"));
        Assert.Equal(2, m.GetInteger("tokenizer.ggml.eos_token_id"));
        Assert.Equal(0, m.GetInteger("tokenizer.ggml.unknown_token_id"));
        Assert.Equal(512, m.GetArray<string>("tokenizer.ggml.tokens").Length);
        Assert.Equal(512, m.GetArray<float>("tokenizer.ggml.scores").Length);
        Assert.Equal(512, m.GetArray<int>("tokenizer.ggml.token_type").Length);

        // 1 embedding + 9 per layer + output norm + output head.
        Assert.Equal(1 + 2 * 9 + 2, f.Tensors.Count);
        var matrix = type == GgmlType.F32 ? GgmlType.F32 : type;
        AssertTensor(f, "token_embd.weight", [64, 512], matrix);
        AssertTensor(f, "blk.1.attn_norm.weight", [64], GgmlType.F32);
        AssertTensor(f, "blk.1.attn_q.weight", [64, 64], matrix);
        AssertTensor(f, "blk.1.attn_k.weight", [64, 32], matrix);
        AssertTensor(f, "blk.1.attn_v.weight", [64, 32], matrix);
        AssertTensor(f, "blk.1.attn_output.weight", [64, 64], matrix);
        AssertTensor(f, "blk.1.ffn_norm.weight", [64], GgmlType.F32);
        AssertTensor(f, "blk.1.ffn_gate.weight", [64, 128], matrix);
        AssertTensor(f, "blk.1.ffn_up.weight", [64, 128], matrix);
        AssertTensor(f, "blk.1.ffn_down.weight", [128, 64], matrix);
        AssertTensor(f, "output_norm.weight", [64], GgmlType.F32);
        AssertTensor(f, "output.weight", [64, 512], matrix);
        foreach (var t in f.Tensors) f.GetTensor(t.Name); // every tensor is readable
    }

    private static void AssertTensor(GgufFile f, string name, long[] shape, GgmlType type)
    {
        var t = f.GetTensorInfo(name);
        Assert.Equal(shape, t.Shape);
        Assert.True(type == t.Type, $"{name}: {t.Type}, expected {type}");
    }

    [Fact]
    public void Vocabulary_is_a_valid_llama_sentencepiece_vocabulary()
    {
        var (tokens, scores, types) = SyntheticModel.BuildVocabulary(49152);
        Assert.Equal(49152, tokens.Length);
        Assert.Equal(tokens.Length, tokens.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(["<unk>", "<s>", "</s>"], tokens[..3]);
        Assert.Equal([SyntheticModel.TokenTypeUnknown, SyntheticModel.TokenTypeControl, SyntheticModel.TokenTypeControl], types[..3]);
        for (int b = 0; b < 256; b++)
        {
            Assert.Equal($"<0x{b:X2}>", tokens[3 + b]);
            Assert.Equal(SyntheticModel.TokenTypeByte, types[3 + b]);
        }
        Assert.All(types[259..], t => Assert.Equal(SyntheticModel.TokenTypeNormal, t));
        Assert.Contains("\u2581the", tokens);
        Assert.Contains("\u2581Once", tokens);
        // Every prefix of a word piece is a piece too, so SentencePiece merges can reach it.
        Assert.Contains("\u2581On", tokens);
        for (int i = 260; i < tokens.Length; i++) Assert.True(scores[i] < scores[i - 1]);
        Assert.All(tokens[259..], t => Assert.False(string.IsNullOrEmpty(t)));
    }

    [Fact]
    public void Q8_0_model_is_the_quantized_f32_model_and_the_seed_decides_every_weight()
    {
        var c = SyntheticModelConfig.Tiny with { FeedForwardLength = 96 + 8 }; // ffn_down rows of 104: stays F32
        using var f32 = GgufTestFiles.Temp("f32.gguf");
        using var f32b = GgufTestFiles.Temp("f32b.gguf");
        using var q8 = GgufTestFiles.Temp("q8.gguf");
        using var quantized = GgufTestFiles.Temp("quantized.gguf");
        using var other = GgufTestFiles.Temp("other.gguf");
        SyntheticModel.Write(f32.Path, c, seed: 5, GgmlType.F32, threads: 1);
        SyntheticModel.Write(f32b.Path, c, seed: 5, GgmlType.F32, threads: 2);
        SyntheticModel.Write(q8.Path, c, seed: 5, GgmlType.Q8_0, threads: 2);
        SyntheticModel.Write(other.Path, c, seed: 6, GgmlType.F32);
        GgufQuantizer.Quantize(f32.Path, quantized.Path);

        Assert.Equal(File.ReadAllBytes(f32.Path), File.ReadAllBytes(f32b.Path));
        Assert.NotEqual(File.ReadAllBytes(f32.Path), File.ReadAllBytes(other.Path));
        using var a = GgufFile.Open(q8.Path);
        using var b = GgufFile.Open(quantized.Path);
        Assert.Equal(GgmlType.F32, a.GetTensorInfo("blk.0.ffn_down.weight").Type);
        Assert.Equal(GgmlType.Q8_0, a.GetTensorInfo("token_embd.weight").Type);
        foreach (var t in a.Tensors)
        {
            Assert.Equal(t.Type, b.GetTensorInfo(t.Name).Type);
            Assert.True(a.GetTensor(t.Name).Bytes.SequenceEqual(b.GetTensor(t.Name).Bytes), t.Name);
        }
    }

    [Theory]
    [InlineData(4, 4, false)]
    [InlineData(4, 2, true)]
    [InlineData(8, 2, false)]
    public void Custom_shapes_carry_their_heads_and_tying(int heads, int kvHeads, bool tied)
    {
        var c = SyntheticModelConfig.Tiny with { HeadCount = heads, HeadCountKv = kvHeads, TiedEmbeddings = tied, BlockCount = 1 };
        using var tmp = GgufTestFiles.Temp();
        SyntheticModel.Write(tmp.Path, c, seed: 3, GgmlType.Q8_0);
        using var f = GgufFile.Open(tmp.Path);
        Assert.Equal(kvHeads, f.Metadata.GetInteger("llama.attention.head_count_kv"));
        Assert.Equal(64 / heads, f.Metadata.GetInteger("llama.rope.dimension_count"));
        Assert.Equal([64L, kvHeads * (64 / heads)], f.GetTensorInfo("blk.0.attn_k.weight").Shape);
        Assert.Equal(!tied, f.HasTensor("output.weight"));
    }

    [Fact]
    public void Weights_have_the_documented_scales()
    {
        var c = SyntheticModelConfig.Tiny;
        using var tmp = GgufTestFiles.Temp();
        SyntheticModel.Write(tmp.Path, c, seed: 9, GgmlType.F32);
        using var f = GgufFile.Open(tmp.Path);

        static (double Mean, double Std, float Min, float Max) Stats(GgufFile f, string name)
        {
            var x = MemoryMarshal.Cast<byte, float>(f.GetTensor(name).Bytes).ToArray();
            double mean = x.Average(v => (double)v);
            double std = Math.Sqrt(x.Average(v => (v - mean) * (v - mean)));
            return (mean, std, x.Min(), x.Max());
        }
        var q = Stats(f, "blk.0.attn_q.weight");
        Assert.InRange(q.Std, 0.9 / 8, 1.1 / 8); // 1/sqrt(64)
        Assert.InRange(q.Mean, -0.01, 0.01);
        var down = Stats(f, "blk.0.ffn_down.weight");
        Assert.InRange(down.Std, 0.9 / Math.Sqrt(128), 1.1 / Math.Sqrt(128));
        var head = Stats(f, "output.weight");
        Assert.InRange(head.Std, 0.9 * 4 / 8, 1.1 * 4 / 8);
        var norm = Stats(f, "blk.1.ffn_norm.weight");
        Assert.InRange(norm.Min, 0.9f, 1.1f);
        Assert.InRange(norm.Max, 0.9f, 1.1f);
        Assert.True(norm.Std > 0.02, "norm weights are not all equal");
        // Different tensors get different values.
        Assert.False(f.GetTensor("blk.0.attn_q.weight").Bytes.SequenceEqual(f.GetTensor("blk.1.attn_q.weight").Bytes));

        Assert.InRange(Stats(f, "output_norm.weight").Max, 0.9f, 1.1f);
        Assert.InRange(Stats(f, "blk.0.attn_output.weight").Std, 0.9 / 4 / 8, 1.1 / 4 / 8); // TokenFocused: a quarter

        // TokenFocused, tied: a small shared embedding, and output_norm around 4 to keep the logit spread.
        using var tiedTmp = GgufTestFiles.Temp("tied.gguf");
        SyntheticModel.Write(tiedTmp.Path, c with { TiedEmbeddings = true }, seed: 9, GgmlType.F32);
        using var tied = GgufFile.Open(tiedTmp.Path);
        Assert.InRange(Stats(tied, "token_embd.weight").Std, 0.9 / 8, 1.1 / 8);
        var outNorm = Stats(tied, "output_norm.weight");
        Assert.InRange(outNorm.Min, 3.6f, 4.4f);
        Assert.InRange(outNorm.Max, 3.6f, 4.4f);

        // Basic, tied: the head scale lives in the embedding; norms and attention at full scale.
        using var basicTmp = GgufTestFiles.Temp("basic.gguf");
        SyntheticModel.Write(basicTmp.Path, c with { TiedEmbeddings = true, Recipe = SyntheticWeightRecipe.Basic }, seed: 9, GgmlType.F32);
        using var basic = GgufFile.Open(basicTmp.Path);
        Assert.InRange(Stats(basic, "token_embd.weight").Std, 0.9 * 4 / 8, 1.1 * 4 / 8);
        Assert.InRange(Stats(basic, "output_norm.weight").Max, 0.9f, 1.1f);
        Assert.InRange(Stats(basic, "blk.0.attn_output.weight").Std, 0.9 / 8, 1.1 / 8);
    }

    [Fact]
    public void Inconsistent_shapes_are_refused()
    {
        using var tmp = GgufTestFiles.Temp();
        Assert.Throws<ArgumentException>(() => SyntheticModel.Write(tmp.Path, SyntheticModelConfig.Tiny with { HeadCountKv = 3 }, 1));
        Assert.Throws<ArgumentException>(() => SyntheticModel.Write(tmp.Path, SyntheticModelConfig.Tiny with { VocabSize = 300 }, 1));
        Assert.Throws<ArgumentException>(() => SyntheticModel.Write(tmp.Path, SyntheticModelConfig.Tiny with { HeadCount = 64 }, 1)); // head dim 1
        Assert.Throws<ArgumentException>(() => SyntheticModel.Write(tmp.Path, SyntheticModelConfig.Tiny, 1, GgmlType.BF16));
        Assert.Throws<ArgumentException>(() => SyntheticModelConfig.FromPreset("gpt-5"));
        Assert.Equal(576, SyntheticModelConfig.FromPreset("SmolLM2-135M").EmbeddingLength);
        _ = RowDecoding.ToBFloat16(1f);
    }
}
