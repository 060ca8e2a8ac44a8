using Engine.Runtime.Encoding;

namespace Engine.Runtime.Tests.Encoding;

/// <summary>The MiniLM encoder's pieces that need no model: accent folding, pooling, ONNX input checks.</summary>
public sealed class EncoderPiecesTests
{
    [Theory]
    [InlineData("Café Crème brûlée", "Cafe Creme brulee")]
    [InlineData("São Paulo, naïve résumé", "Sao Paulo, naive resume")]
    [InlineData("Ångström Łódź ẞ œ", "Angstrom Łodz ẞ œ")] // Ł, ẞ, œ have no canonical decomposition: kept, as NFD keeps them
    [InlineData("Tiếng Việt", "Tieng Viet")]                // Latin Extended Additional
    [InlineData("e\u0301", "e")]                            // a combining mark already in the text is dropped
    public void Accents_fold_as_nfd_then_dropping_marks(string input, string expected) =>
        Assert.Equal(expected, AccentFolding.Fold(input));

    [Fact]
    public void Folding_text_without_accents_returns_the_same_instance()
    {
        string plain = "plain ASCII text, 100% $50";
        Assert.Same(plain, AccentFolding.Fold(plain));
    }

    [Fact]
    public void Mean_pooling_averages_rows_then_normalizes()
    {
        float[] rows = [1, 2, 0, 3, 4, 0]; // [2, 3]
        var dst = new float[3];
        BertForwardPass.MeanPoolAndNormalize(rows, 2, dst);
        // mean (2, 3, 0), norm sqrt(13)
        Assert.Equal(2 / MathF.Sqrt(13), dst[0], 6);
        Assert.Equal(3 / MathF.Sqrt(13), dst[1], 6);
        Assert.Equal(0f, dst[2]);
    }

    [Fact]
    public void Bytes_that_are_not_onnx_are_a_clear_error()
    {
        var e = Assert.Throws<InvalidDataException>(() => OnnxBertReader.Read([0xFF, 0xFF, 0xFF, 0x01, 0x02], BertConfig.MiniLmL6V2, "junk.onnx"));
        Assert.Contains("junk.onnx", e.Message);
    }

    [Fact]
    public void An_onnx_graph_without_bert_weights_names_the_missing_tensor()
    {
        var model = new Onnx.ModelProto { Graph = new Onnx.GraphProto { Name = "empty" } };
        var bytes = Google.Protobuf.MessageExtensions.ToByteArray(model);
        var e = Assert.Throws<InvalidDataException>(() => OnnxBertReader.Read(bytes, BertConfig.MiniLmL6V2, "empty.onnx"));
        Assert.Contains(BertTensorNames.WordEmbeddings, e.Message);
    }

    [Fact]
    public void Cache_file_names_carry_model_hash_and_precision()
    {
        string hash = new string('a', 64);
        Assert.Equal(Path.Combine("dir", "m.aaaaaaaaaaaaaaaa.q8_0.gguf"), BertWeightCache.PathFor("dir", "m", hash, EncoderPrecision.Q8_0));
        Assert.Equal(Path.Combine("dir", "m.aaaaaaaaaaaaaaaa.f32.gguf"), BertWeightCache.PathFor("dir", "m", hash, EncoderPrecision.F32));
    }
}
