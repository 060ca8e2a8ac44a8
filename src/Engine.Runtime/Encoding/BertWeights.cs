using Engine.Core.Backend;
using Engine.Core.Gguf;

namespace Engine.Runtime.Encoding;

/// <summary>One encoder layer's weights on a backend; matrices are <c>[in, out]</c> in ggml order (rows = out).</summary>
public sealed class BertLayerWeights
{
    public required DeviceWeight Query { get; init; }          // [hidden, hidden]
    public required DeviceWeight QueryBias { get; init; }      // [hidden]
    public required DeviceWeight Key { get; init; }            // [hidden, hidden]
    public required DeviceWeight KeyBias { get; init; }        // [hidden]
    public required DeviceWeight Value { get; init; }          // [hidden, hidden]
    public required DeviceWeight ValueBias { get; init; }      // [hidden]
    public required DeviceWeight AttentionOutput { get; init; }     // [hidden, hidden]
    public required DeviceWeight AttentionOutputBias { get; init; } // [hidden]
    public required DeviceWeight AttentionNorm { get; init; }       // [hidden]
    public required DeviceWeight AttentionNormBias { get; init; }   // [hidden]
    public required DeviceWeight Intermediate { get; init; }        // [hidden, ffn]
    public required DeviceWeight IntermediateBias { get; init; }    // [ffn]
    public required DeviceWeight Output { get; init; }              // [ffn, hidden]
    public required DeviceWeight OutputBias { get; init; }          // [hidden]
    public required DeviceWeight OutputNorm { get; init; }          // [hidden]
    public required DeviceWeight OutputNormBias { get; init; }      // [hidden]
}

/// <summary>All weights of a BERT encoder, loaded once on a backend from a <see cref="BertWeightCache"/> file.</summary>
public sealed class BertWeights : IDisposable
{
    private readonly List<DeviceWeight> _all;

    private BertWeights(List<DeviceWeight> all, DeviceWeight word, DeviceWeight position, DeviceWeight tokenType,
                        DeviceWeight norm, DeviceWeight normBias, BertLayerWeights[] layers)
    {
        _all = all;
        WordEmbeddings = word;
        PositionEmbeddings = position;
        TokenTypeEmbeddings = tokenType;
        EmbeddingNorm = norm;
        EmbeddingNormBias = normBias;
        Layers = layers;
    }

    public DeviceWeight WordEmbeddings { get; }      // [hidden, vocab]
    public DeviceWeight PositionEmbeddings { get; }  // [hidden, maxPositions]
    public DeviceWeight TokenTypeEmbeddings { get; } // [hidden, 2]
    public DeviceWeight EmbeddingNorm { get; }       // [hidden]
    public DeviceWeight EmbeddingNormBias { get; }   // [hidden]
    public IReadOnlyList<BertLayerWeights> Layers { get; }

    /// <summary>Loads every tensor the encoder needs from <paramref name="file"/>, checking shapes against <paramref name="config"/>.</summary>
    public static BertWeights Load(GgufFile file, BertConfig config, IComputeBackend backend)
    {
        var loaded = new List<DeviceWeight>();
        try
        {
            DeviceWeight Load(string name, int cols, int rows)
            {
                var t = file.GetTensor(name);
                bool ok = rows == 1 ? t.Shape.Length == 1 && t.Shape[0] == cols : t.Shape.Length == 2 && t.Shape[0] == cols && t.Shape[1] == rows;
                if (!ok) throw new GgufFormatException(file.Path, name, $"shape [{string.Join(", ", t.Shape)}], expected [{cols}, {rows}]");
                var w = backend.LoadWeight(t);
                loaded.Add(w);
                return w;
            }

            int h = config.Hidden, f = config.FeedForward;
            var word = Load(BertTensorNames.WordEmbeddings, h, config.VocabSize);
            var position = Load(BertTensorNames.PositionEmbeddings, h, config.MaxPositions);
            var tokenType = Load(BertTensorNames.TokenTypeEmbeddings, h, checked((int)file.GetTensor(BertTensorNames.TokenTypeEmbeddings).Shape[^1]));
            var norm = Load(BertTensorNames.EmbeddingNormWeight, h, 1);
            var normBias = Load(BertTensorNames.EmbeddingNormBias, h, 1);
            var layers = new BertLayerWeights[config.Layers];
            for (int l = 0; l < layers.Length; l++)
            {
                DeviceWeight W(string m, int cols, int rows) => Load(BertTensorNames.Weight(l, m), cols, rows);
                DeviceWeight B(string m, int length) => Load(BertTensorNames.Bias(l, m), length, 1);
                layers[l] = new BertLayerWeights
                {
                    Query = W(BertTensorNames.Query, h, h), QueryBias = B(BertTensorNames.Query, h),
                    Key = W(BertTensorNames.Key, h, h), KeyBias = B(BertTensorNames.Key, h),
                    Value = W(BertTensorNames.Value, h, h), ValueBias = B(BertTensorNames.Value, h),
                    AttentionOutput = W(BertTensorNames.AttentionOutput, h, h), AttentionOutputBias = B(BertTensorNames.AttentionOutput, h),
                    AttentionNorm = W(BertTensorNames.AttentionNorm, h, 1), AttentionNormBias = B(BertTensorNames.AttentionNorm, h),
                    Intermediate = W(BertTensorNames.Intermediate, h, f), IntermediateBias = B(BertTensorNames.Intermediate, f),
                    Output = W(BertTensorNames.Output, f, h), OutputBias = B(BertTensorNames.Output, h),
                    OutputNorm = W(BertTensorNames.OutputNorm, h, 1), OutputNormBias = B(BertTensorNames.OutputNorm, h),
                };
            }
            return new BertWeights(loaded, word, position, tokenType, norm, normBias, layers);
        }
        catch
        {
            foreach (var w in loaded) w.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var w in _all) w.Dispose();
        _all.Clear();
    }
}
