namespace Engine.Runtime.Encoding;

/// <summary>Turns texts into unit vectors whose dot product is their cosine similarity.</summary>
public interface ITextEmbedder
{
    /// <summary>Length of one embedding (384 for MiniLM).</summary>
    int Dimensions { get; }

    /// <summary>Names the model and its precision, e.g. <c>all-MiniLM-L6-v2/q8_0</c>; vectors from different versions do not mix.</summary>
    string ModelVersion { get; }

    /// <summary>
    /// Embeds <paramref name="texts"/> into <paramref name="output"/> <c>[texts.Count, Dimensions]</c> f32 (at least that
    /// many elements; the rest is left alone), each row L2-normalized (mean pooling then L2).
    /// </summary>
    void Embed(IReadOnlyList<string> texts, Span<float> output);
}

/// <summary>Element type of an encoder's matrix weights.</summary>
public enum EncoderPrecision
{
    /// <summary>The ONNX file's f32 weights as they are.</summary>
    F32 = 0,

    /// <summary>Matrix weights in Q8_0 blocks (embedding tables, biases and norms stay f32).</summary>
    Q8_0 = 1,
}
