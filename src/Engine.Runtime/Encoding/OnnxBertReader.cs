using System.Runtime.InteropServices;
using Onnx;

namespace Engine.Runtime.Encoding;

/// <summary>An f32 tensor read from an ONNX file, row-major with ONNX's dims (slowest first).</summary>
public sealed record OnnxTensor(string Name, long[] Dims, float[] Data);

/// <summary>
/// Reads the weights of a PyTorch-exported HF <c>BertModel</c> ONNX graph (as all-MiniLM-L6-v2's) into named f32
/// tensors. Embeddings, biases and LayerNorm parameters are named initializers. The exporter folds each
/// <c>nn.Linear</c> into <c>MatMul(x, W)</c> then <c>Add(·, bias)</c> with W transposed to <c>[in, out]</c> and
/// given a number for a name ("927"); so each such MatMul is named after the bias its output is added to
/// (<c>….query.bias</c> → <c>….query.weight</c>) and transposed back to <c>[out, in]</c>.
/// </summary>
public static class OnnxBertReader
{
    private const int OnnxFloat = (int)TensorProto.Types.DataType.Float;

    /// <summary>Every f32 weight the encoder needs, by <see cref="BertTensorNames"/> name; checks shapes against <paramref name="config"/>.</summary>
    /// <exception cref="InvalidDataException">The graph is not the expected BERT export; the message names the tensor.</exception>
    public static Dictionary<string, OnnxTensor> Read(byte[] onnx, BertConfig config, string source = "model.onnx")
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(onnx);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{source}: not an ONNX model ({e.Message})", e);
        }
        var graph = model.Graph ?? throw new InvalidDataException($"{source}: no graph");
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer) initializers[t.Name] = t;

        // output name -> nodes that take it as an input
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (string input in node.Input)
            {
                if (!consumers.TryGetValue(input, out var list)) consumers[input] = list = [];
                list.Add(node);
            }

        var result = new Dictionary<string, OnnxTensor>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            if (node.OpType != "MatMul" || node.Input.Count != 2) continue;
            if (!initializers.TryGetValue(node.Input[1], out var w) || w.Dims.Count != 2) continue;
            string? bias = null;
            if (consumers.TryGetValue(node.Output[0], out var next))
                foreach (var add in next)
                {
                    if (add.OpType != "Add") continue;
                    foreach (string input in add.Input)
                        if (input != node.Output[0] && input.EndsWith(".bias", StringComparison.Ordinal) && initializers.ContainsKey(input))
                            bias = input;
                }
            if (bias is null) continue; // e.g. attention's Q·Kᵀ: its inputs are activations, so not reached; anything else is not a Linear
            string name = bias[..^".bias".Length] + ".weight";
            var dims = w.Dims.ToArray();
            result[name] = new OnnxTensor(name, [dims[1], dims[0]], Transpose(ToFloats(w, source), (int)dims[0], (int)dims[1]));
        }
        foreach (var (name, t) in initializers)
            if (t.DataType == OnnxFloat && !result.ContainsKey(name) && !IsNumbered(name))
                result[name] = new OnnxTensor(name, t.Dims.ToArray(), ToFloats(t, source));

        Check(result, source, BertTensorNames.WordEmbeddings, config.VocabSize, config.Hidden);
        Check(result, source, BertTensorNames.PositionEmbeddings, config.MaxPositions, config.Hidden);
        Check(result, source, BertTensorNames.TokenTypeEmbeddings, -1, config.Hidden);
        Check(result, source, BertTensorNames.EmbeddingNormWeight, config.Hidden);
        Check(result, source, BertTensorNames.EmbeddingNormBias, config.Hidden);
        for (int l = 0; l < config.Layers; l++)
        {
            int h = config.Hidden, f = config.FeedForward;
            foreach (string m in new[] { BertTensorNames.Query, BertTensorNames.Key, BertTensorNames.Value, BertTensorNames.AttentionOutput })
            {
                Check(result, source, BertTensorNames.Weight(l, m), h, h);
                Check(result, source, BertTensorNames.Bias(l, m), h);
            }
            Check(result, source, BertTensorNames.Weight(l, BertTensorNames.Intermediate), f, h);
            Check(result, source, BertTensorNames.Bias(l, BertTensorNames.Intermediate), f);
            Check(result, source, BertTensorNames.Weight(l, BertTensorNames.Output), h, f);
            Check(result, source, BertTensorNames.Bias(l, BertTensorNames.Output), h);
            foreach (string m in new[] { BertTensorNames.AttentionNorm, BertTensorNames.OutputNorm })
            {
                Check(result, source, BertTensorNames.Weight(l, m), h);
                Check(result, source, BertTensorNames.Bias(l, m), h);
            }
        }
        if (result.ContainsKey(BertTensorNames.Weight(config.Layers, BertTensorNames.Query)))
            throw new InvalidDataException($"{source}: more than the {config.Layers} layers the config declares");
        return result;
    }

    private static bool IsNumbered(string name) => name.Length > 0 && name.All(char.IsAsciiDigit);

    private static void Check(Dictionary<string, OnnxTensor> tensors, string source, string name, params long[] dims)
    {
        if (!tensors.TryGetValue(name, out var t)) throw new InvalidDataException($"{source}: tensor {name} not found");
        bool ok = t.Dims.Length == dims.Length;
        for (int i = 0; ok && i < dims.Length; i++) ok = dims[i] < 0 || t.Dims[i] == dims[i];
        if (!ok) throw new InvalidDataException($"{source}: tensor {name} has shape [{string.Join(", ", t.Dims)}], expected [{string.Join(", ", dims)}]");
    }

    private static float[] ToFloats(TensorProto t, string source)
    {
        if (t.DataType != OnnxFloat) throw new InvalidDataException($"{source}: tensor {t.Name} has ONNX data type {t.DataType}, expected FLOAT");
        long count = 1;
        foreach (long d in t.Dims) count *= d;
        float[] data;
        if (!t.RawData.IsEmpty)
        {
            // raw_data is little-endian (onnx.proto), as this machine.
            if (t.RawData.Length != count * sizeof(float)) throw new InvalidDataException($"{source}: tensor {t.Name} has {t.RawData.Length} raw bytes for {count} floats");
            data = MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();
        }
        else
        {
            if (t.FloatData.Count != count) throw new InvalidDataException($"{source}: tensor {t.Name} has {t.FloatData.Count} floats, expected {count}");
            data = t.FloatData.ToArray();
        }
        return data;
    }

    // [rows, cols] -> [cols, rows]
    private static float[] Transpose(float[] src, int rows, int cols)
    {
        var dst = new float[src.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                dst[c * rows + r] = src[r * cols + c];
        return dst;
    }
}
