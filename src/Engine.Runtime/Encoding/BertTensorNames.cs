namespace Engine.Runtime.Encoding;

/// <summary>
/// Tensor names of a BERT encoder, as HF <c>BertModel</c>'s state dict spells them; the ONNX export keeps them
/// for embeddings, biases and norms, and <see cref="OnnxBertReader"/> gives the matrices the same names.
/// Matrices are stored <c>[in, out]</c> in ggml order (rows = out), so <c>y = x · Wᵀ</c> as MatMul expects.
/// </summary>
public static class BertTensorNames
{
    public const string WordEmbeddings = "embeddings.word_embeddings.weight";        // [hidden, vocab]
    public const string PositionEmbeddings = "embeddings.position_embeddings.weight"; // [hidden, maxPositions]
    public const string TokenTypeEmbeddings = "embeddings.token_type_embeddings.weight"; // [hidden, 2]
    public const string EmbeddingNormWeight = "embeddings.LayerNorm.weight";          // [hidden]
    public const string EmbeddingNormBias = "embeddings.LayerNorm.bias";              // [hidden]

    // Per-layer modules; each has ".weight" and ".bias".
    public const string Query = "attention.self.query";          // [hidden, hidden]
    public const string Key = "attention.self.key";              // [hidden, hidden]
    public const string Value = "attention.self.value";          // [hidden, hidden]
    public const string AttentionOutput = "attention.output.dense"; // [hidden, hidden]
    public const string AttentionNorm = "attention.output.LayerNorm"; // [hidden]
    public const string Intermediate = "intermediate.dense";     // [hidden, ffn]
    public const string Output = "output.dense";                 // [ffn, hidden]
    public const string OutputNorm = "output.LayerNorm";         // [hidden]

    /// <summary>Modules of a layer whose weight is a matrix (the rest are LayerNorms).</summary>
    public static readonly string[] Matrices = [Query, Key, Value, AttentionOutput, Intermediate, Output];

    /// <summary>Every module of a layer.</summary>
    public static readonly string[] LayerModules = [Query, Key, Value, AttentionOutput, AttentionNorm, Intermediate, Output, OutputNorm];

    public static string Weight(int layer, string module) => $"encoder.layer.{layer}.{module}.weight";

    public static string Bias(int layer, string module) => $"encoder.layer.{layer}.{module}.bias";
}
