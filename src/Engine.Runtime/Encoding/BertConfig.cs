namespace Engine.Runtime.Encoding;

/// <summary>Hyper-parameters of a BERT encoder (HF <c>BertModel</c>, post-LayerNorm, erf GELU).</summary>
public sealed record BertConfig
{
    /// <summary>Word-piece vocabulary size (rows of the word embedding table).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Hidden size (embedding length).</summary>
    public required int Hidden { get; init; }

    /// <summary>Number of encoder layers.</summary>
    public required int Layers { get; init; }

    /// <summary>Attention heads per layer; <see cref="HeadDim"/> = Hidden / Heads.</summary>
    public required int Heads { get; init; }

    /// <summary>Inner size of the feed-forward block.</summary>
    public required int FeedForward { get; init; }

    /// <summary>Rows of the position embedding table: the longest sequence the model can take.</summary>
    public required int MaxPositions { get; init; }

    /// <summary>Longest sequence (special tokens included) the encoder runs; longer texts are truncated.</summary>
    public required int MaxSequenceLength { get; init; }

    /// <summary>LayerNorm epsilon.</summary>
    public required float LayerNormEps { get; init; }

    public int HeadDim => Hidden / Heads;

    /// <summary>
    /// all-MiniLM-L6-v2, from its config.json (hidden_size 384, num_hidden_layers 6, num_attention_heads 12,
    /// intermediate_size 1536, max_position_embeddings 512, layer_norm_eps 1e-12, vocab_size 30522) and
    /// sentence_bert_config.json (max_seq_length 256: the length it was trained and is used at).
    /// </summary>
    public static BertConfig MiniLmL6V2 { get; } = new()
    {
        VocabSize = 30522,
        Hidden = 384,
        Layers = 6,
        Heads = 12,
        FeedForward = 1536,
        MaxPositions = 512,
        MaxSequenceLength = 256,
        LayerNormEps = 1e-12f,
    };
}
