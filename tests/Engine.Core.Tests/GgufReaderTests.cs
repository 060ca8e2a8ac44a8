using Engine.Core.Gguf;
using Engine.Tests.Shared;

namespace Engine.Core.Tests;

public class GgufReaderTests
{
    [RequiresSharedFact]
    public void Reads_stories260K_header_metadata_and_tensor_table()
    {
        using var f = GgufFile.Open(SharedFixtures.PathOf("models", "stories260K.f32.gguf"));
        Assert.Equal(3u, f.Version);
        Assert.Equal("llama", f.Architecture);
        Assert.Equal(64, f.Metadata.GetInteger("llama.embedding_length"));
        Assert.Equal(5, f.Metadata.GetInteger("llama.block_count"));
        Assert.Equal(512, f.Metadata.GetArray<string>("tokenizer.ggml.tokens").Length);
        var down = f.GetTensorInfo("blk.0.ffn_down.weight");
        Assert.Equal(new long[] { 172, 64 }, down.Shape);
        Assert.Equal(GgmlType.F32, down.Type);
        var view = f.GetTensor("blk.0.ffn_down.weight");
        Assert.Equal(64, view.Rows);
        Assert.Equal(172, view.Cols);
    }

    [RequiresSharedFact]
    public void Q8_0_fixture_keeps_ffn_down_in_f32_and_the_rest_in_q8_0()
    {
        using var f = GgufFile.Open(SharedFixtures.PathOf("models", "stories260K.q8_0.gguf"));
        Assert.Equal(GgmlType.F32, f.GetTensorInfo("blk.0.ffn_down.weight").Type);
        Assert.Equal(GgmlType.Q8_0, f.GetTensorInfo("blk.0.attn_q.weight").Type);
    }
}
