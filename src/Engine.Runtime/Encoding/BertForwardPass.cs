using Engine.Core.Backend;

namespace Engine.Runtime.Encoding;

/// <summary>
/// The BERT encoder forward pass over <see cref="IComputeBackend"/> ops, for several texts packed into one
/// batch of rows (no padding: <see cref="IComputeBackend.EncoderAttention"/> keeps each sequence to itself),
/// followed by sentence-transformers' pooling: the mean of every token's last hidden state (special tokens
/// included, as its attention mask does), then L2 normalization.
/// <code>
/// x = LayerNorm(word[id] + position[pos] + tokenType[0])
/// per layer:  x = LayerNorm(x + (Attention(x·Wq+bq, x·Wk+bk, x·Wv+bv))·Wo + bo)
///             x = LayerNorm(x + GELU(x·Wi+bi)·Wout + bout)
/// </code>
/// Buffers grow to the largest batch seen (up to <see cref="MaxTokensPerPass"/>) and are reused; not thread-safe.
/// </summary>
public sealed class BertForwardPass : IDisposable
{
    /// <summary>Most token rows in one pass; larger batches are split into passes of whole texts (the FFN buffer is then 48 MiB).</summary>
    public const int MaxTokensPerPass = 8192;

    private readonly IComputeBackend _backend;
    private readonly BertWeights _weights;
    private readonly float _attentionScale;
    private int _capacity;
    private DeviceBuffer? _x, _q, _k, _v, _attention, _tmp, _ffn; // [capacity, hidden] f32; _ffn [capacity, ffn] f32
    private int[] _ids = [], _positions = [], _tokenTypes = [];   // [capacity]
    private float[] _hidden = [];                                 // [capacity, hidden] f32, host copy of the last layer

    public BertForwardPass(IComputeBackend backend, BertConfig config, BertWeights weights)
    {
        _backend = backend;
        Config = config;
        _weights = weights;
        _attentionScale = 1f / MathF.Sqrt(config.HeadDim);
    }

    public BertConfig Config { get; }

    /// <summary>
    /// Runs the encoder on <paramref name="sequences"/> (token ids, each at most <see cref="BertConfig.MaxPositions"/>
    /// long and not empty) and writes their pooled, L2-normalized embeddings to <paramref name="output"/>
    /// <c>[sequences.Count, hidden]</c>.
    /// </summary>
    public void Run(IReadOnlyList<IReadOnlyList<int>> sequences, Span<float> output)
    {
        int hidden = Config.Hidden;
        if (output.Length < sequences.Count * hidden) throw new ArgumentException($"output holds {output.Length} floats, {sequences.Count} × {hidden} needed", nameof(output));
        int start = 0;
        while (start < sequences.Count)
        {
            int end = start, tokens = 0;
            while (end < sequences.Count && (end == start || tokens + sequences[end].Count <= MaxTokensPerPass))
                tokens += Check(sequences[end++]).Count;
            RunPass(sequences, start, end, tokens, output.Slice(start * hidden, (end - start) * hidden));
            start = end;
        }
    }

    private IReadOnlyList<int> Check(IReadOnlyList<int> sequence)
    {
        if (sequence.Count == 0 || sequence.Count > Config.MaxPositions)
            throw new ArgumentException($"a sequence has {sequence.Count} tokens; 1..{Config.MaxPositions} allowed");
        foreach (int id in sequence)
            if ((uint)id >= (uint)Config.VocabSize) throw new ArgumentException($"token id {id} is outside the vocabulary (0..{Config.VocabSize - 1})");
        return sequence;
    }

    private void RunPass(IReadOnlyList<IReadOnlyList<int>> sequences, int start, int end, int n, Span<float> output)
    {
        EnsureCapacity(n);
        int hidden = Config.Hidden, ffn = Config.FeedForward;
        var lengths = new int[end - start];
        int row = 0;
        for (int s = start; s < end; s++)
        {
            var seq = sequences[s];
            lengths[s - start] = seq.Count;
            for (int i = 0; i < seq.Count; i++, row++)
            {
                _ids[row] = seq[i];
                _positions[row] = i;
            }
        }

        var b = _backend;
        var w = _weights;
        var x = _x!; var q = _q!; var k = _k!; var v = _v!; var attn = _attention!; var tmp = _tmp!; var f = _ffn!;
        int count = n * hidden;

        // embeddings: [n, hidden]
        b.Embed(w.WordEmbeddings, _ids.AsSpan(0, n), x);
        b.Embed(w.PositionEmbeddings, _positions.AsSpan(0, n), tmp);
        b.Add(x, tmp, count);
        b.Embed(w.TokenTypeEmbeddings, _tokenTypes.AsSpan(0, n), tmp);
        b.Add(x, tmp, count);
        b.LayerNorm(x, w.EmbeddingNorm, w.EmbeddingNormBias, x, n, hidden, Config.LayerNormEps);

        foreach (var l in w.Layers)
        {
            b.MatMul(x, n, [new MatMulTarget(l.Query, q), new MatMulTarget(l.Key, k), new MatMulTarget(l.Value, v)]);
            b.AddBias(q, l.QueryBias, n);
            b.AddBias(k, l.KeyBias, n);
            b.AddBias(v, l.ValueBias, n);
            b.EncoderAttention(q, k, v, attn, lengths, Config.Heads, Config.HeadDim, _attentionScale);
            b.MatMul(attn, n, [new MatMulTarget(l.AttentionOutput, tmp)]);
            b.AddBias(tmp, l.AttentionOutputBias, n);
            b.Add(x, tmp, count);
            b.LayerNorm(x, l.AttentionNorm, l.AttentionNormBias, x, n, hidden, Config.LayerNormEps);

            b.MatMul(x, n, [new MatMulTarget(l.Intermediate, f)]);
            b.AddBias(f, l.IntermediateBias, n);
            b.Gelu(f, f, n * ffn);
            b.MatMul(f, n, [new MatMulTarget(l.Output, tmp)]);
            b.AddBias(tmp, l.OutputBias, n);
            b.Add(x, tmp, count);
            b.LayerNorm(x, l.OutputNorm, l.OutputNormBias, x, n, hidden, Config.LayerNormEps);
        }

        var last = _hidden.AsSpan(0, count);
        b.Read(x, last);
        row = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            var pooled = output.Slice(s * hidden, hidden);
            MeanPoolAndNormalize(last.Slice(row * hidden, lengths[s] * hidden), lengths[s], pooled);
            row += lengths[s];
        }
    }

    /// <summary>
    /// Mean of <paramref name="rows"/> <c>[length, dim]</c> rows, then divided by its L2 norm (at least 1e-12, as
    /// torch.nn.functional.normalize, which sentence-transformers' Normalize module calls).
    /// </summary>
    internal static void MeanPoolAndNormalize(ReadOnlySpan<float> rows, int length, Span<float> dst)
    {
        int dim = dst.Length;
        dst.Clear();
        for (int r = 0; r < length; r++)
        {
            var row = rows.Slice(r * dim, dim);
            for (int i = 0; i < dim; i++) dst[i] += row[i];
        }
        double sq = 0;
        for (int i = 0; i < dim; i++)
        {
            dst[i] /= length;
            sq += (double)dst[i] * dst[i];
        }
        float inv = 1f / MathF.Max((float)Math.Sqrt(sq), 1e-12f);
        for (int i = 0; i < dim; i++) dst[i] *= inv;
    }

    private void EnsureCapacity(int n)
    {
        if (n <= _capacity) return;
        int capacity = Math.Max(n, Math.Min(MaxTokensPerPass, Math.Max(64, _capacity * 2)));
        FreeBuffers();
        int hidden = Config.Hidden;
        _x = _backend.Allocate(capacity * hidden);
        _q = _backend.Allocate(capacity * hidden);
        _k = _backend.Allocate(capacity * hidden);
        _v = _backend.Allocate(capacity * hidden);
        _attention = _backend.Allocate(capacity * hidden);
        _tmp = _backend.Allocate(capacity * hidden);
        _ffn = _backend.Allocate(capacity * Config.FeedForward);
        _ids = new int[capacity];
        _positions = new int[capacity];
        _tokenTypes = new int[capacity]; // single-segment input: token type 0 everywhere
        _hidden = new float[capacity * hidden];
        _capacity = capacity;
    }

    private void FreeBuffers()
    {
        foreach (var buffer in new[] { _x, _q, _k, _v, _attention, _tmp, _ffn }) buffer?.Dispose();
        _x = _q = _k = _v = _attention = _tmp = _ffn = null;
        _capacity = 0;
    }

    public void Dispose() => FreeBuffers();
}
