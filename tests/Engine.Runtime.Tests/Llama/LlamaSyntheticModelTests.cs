using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Runtime.Llama;

namespace Engine.Runtime.Tests.Llama;

/// <summary>The decoder on seeded random models written by our own GGUF writer.</summary>
public sealed class LlamaSyntheticModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("engine-llama-synth-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(RandomLlamaFile spec)
    {
        string path = Path.Combine(_dir, $"m-{Guid.NewGuid():N}.gguf");
        spec.Write(path);
        return path;
    }

    private static float[] PromptLogits(string path, string backendName = "reference")
    {
        using var backend = TestBackends.Create(backendName);
        using var model = LlamaModel.Load(path, backend);
        using var decoder = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = 16 });
        return decoder.Forward([1, 5, 9, 33, 7]).ToArray();
    }

    [Fact]
    public void Missing_block_count_is_an_error_naming_the_key()
    {
        string path = Write(new RandomLlamaFile { OmitKeys = ["llama.block_count"] });
        var e = Assert.Throws<GgufFormatException>(() => PromptLogits(path));
        Assert.Equal("llama.block_count", e.Field);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void A_mistyped_key_is_an_error_naming_the_key()
    {
        string path = Write(new RandomLlamaFile { OverrideKeys = new Dictionary<string, GgufValue> { ["llama.embedding_length"] = GgufValue.Of("64") } });
        var e = Assert.Throws<GgufFormatException>(() => PromptLogits(path));
        Assert.Equal("llama.embedding_length", e.Field);
        Assert.Contains("integer", e.Message);
    }

    [Fact]
    public void A_missing_layer_tensor_is_an_error_naming_the_tensor()
    {
        string path = Write(new RandomLlamaFile { OmitTensors = ["blk.1.ffn_up.weight"] });
        Assert.Equal("blk.1.ffn_up.weight", Assert.Throws<GgufFormatException>(() => PromptLogits(path)).Field);
    }

    [Fact]
    public void Head_count_kv_defaults_to_head_count()
    {
        string path = Write(new RandomLlamaFile { KvHeads = 4, OmitKeys = ["llama.attention.head_count_kv"] });
        using var file = GgufFile.Open(path);
        Assert.Equal(4, LlamaConfig.FromGguf(file).KvHeads);
    }

    [Fact]
    public void A_missing_output_head_is_tied_to_the_token_embedding()
    {
        // Same seed: the untied file draws an extra output matrix, so compare against a file whose
        // output.weight is a copy of token_embd instead (write it by hand from the tied model's bytes).
        string tied = Write(new RandomLlamaFile { TiedOutput = true, Seed = 5 });
        using var backend = TestBackends.Create("reference");
        using var model = LlamaModel.Load(tied, backend);
        Assert.True(model.Weights.OutputTied);
        Assert.Same(model.Weights.TokenEmbedding, model.Weights.Output);

        string untied = Path.Combine(_dir, "untied.gguf");
        using (var w = GgufWriter.Create(untied))
        {
            foreach (var (k, v) in model.File.Metadata.Entries) w.Metadata.Set(k, v);
            var infos = model.File.Tensors.ToList();
            foreach (var t in infos) w.AddTensor(t.Name, t.Type, t.Shape);
            w.AddTensor(LlamaTensorNames.Output, GgmlType.F32, model.File.GetTensorInfo(LlamaTensorNames.TokenEmbedding).Shape);
            foreach (var t in infos) w.WriteTensor(t.Name, model.File.GetTensor(t.Name).Bytes);
            w.WriteTensor(LlamaTensorNames.Output, model.File.GetTensor(LlamaTensorNames.TokenEmbedding).Bytes);
            w.Finish();
        }
        Assert.Equal(PromptLogits(tied), PromptLogits(untied));
    }

    [Fact]
    public void Qwen2_files_rotate_halves_and_apply_qkv_bias()
    {
        string withBias = Write(new RandomLlamaFile { Architecture = "qwen2", Bias = true, Seed = 3 });
        string zeroBias = Write(new RandomLlamaFile { Architecture = "qwen2", Bias = true, BiasScale = 0, Seed = 3 });
        string noBias = Write(new RandomLlamaFile { Architecture = "qwen2", Seed = 3 });
        using (var backend = TestBackends.Create("reference"))
        using (var model = LlamaModel.Load(withBias, backend))
        {
            Assert.Equal(RopeStyle.NeoX, model.Config.RopeStyle);
            Assert.All(model.Weights.Layers, l => Assert.NotNull(l.KBias));
        }
        // Bias tensors draw random numbers, so the weights after them differ between the biased and
        // the unbiased file: compare zero bias with real bias (same weights otherwise) instead.
        var zero = PromptLogits(zeroBias);
        var biased = PromptLogits(withBias);
        Assert.True(LlamaDecoderTests.NormalizedError(biased, zero) > 1e-3, "q/k/v bias had no effect");
        Assert.Equal(96, PromptLogits(noBias).Length);
    }

    [Fact]
    public void Unsupported_architecture_is_an_error_naming_it()
    {
        string path = Write(new RandomLlamaFile { Architecture = "falcon" });
        var e = Assert.Throws<GgufFormatException>(() => PromptLogits(path));
        Assert.Equal("general.architecture", e.Field);
        Assert.Contains("falcon", e.Message);
    }

    [Theory]
    [InlineData("llama.rope.scaling.type", "yarn")]
    [InlineData("llama.attention.key_length", "32")]
    [InlineData("llama.expert_count", "8")]
    public void Features_that_change_the_math_are_refused_by_key(string key, string value)
    {
        var v = int.TryParse(value, out int i) ? GgufValue.Of((uint)i) : GgufValue.Of(value);
        string path = Write(new RandomLlamaFile { OverrideKeys = new Dictionary<string, GgufValue> { [key] = v } });
        var e = Assert.Throws<GgufFormatException>(() => PromptLogits(path));
        Assert.Equal(key, e.Field);
        Assert.Contains("not supported", e.Message);
    }
}
