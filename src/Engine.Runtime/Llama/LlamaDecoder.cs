using System.Diagnostics.CodeAnalysis;
using Engine.Core.Backend;

namespace Engine.Runtime.Llama;

/// <summary>Sizes of a <see cref="LlamaDecoder"/>'s buffers, fixed at construction.</summary>
public sealed record LlamaDecoderOptions
{
    /// <summary>llama.cpp's default n_ubatch is 512; 64 keeps the activations of large models small while prefill still batches.</summary>
    public const int DefaultMaxBatch = 64;

    /// <summary>Positions of the KV cache; 0 means the model's declared <c>context_length</c>.</summary>
    public int ContextLength { get; init; }

    /// <summary>Most tokens one forward step processes together; longer inputs run in chunks of this size.</summary>
    public int MaxBatch { get; init; } = DefaultMaxBatch;

    /// <summary>
    /// When true the output head runs on every row and <see cref="LlamaDecoder.Forward(ReadOnlySpan{int}, Span{float})"/>
    /// can return the logits of every token (parity tests); otherwise only the last row's logits are computed.
    /// </summary>
    public bool AllLogits { get; init; }
}

/// <summary>
/// One sequence's forward pass over a <see cref="LlamaModel"/>, written only against
/// <see cref="IComputeBackend"/>: token embedding, per layer RMSNorm → fused q/k/v → (bias) → RoPE →
/// KV store → grouped-query attention → output projection → residual, RMSNorm → fused gate/up →
/// SwiGLU → down projection → residual; then the final RMSNorm and the output head.
/// <para>
/// Every device buffer, slice and <see cref="MatMulTarget"/> array is allocated in the constructor,
/// sized for <see cref="LlamaDecoderOptions.MaxBatch"/> rows: a forward step allocates nothing.
/// Not thread-safe: one owner drives it.
/// </para>
/// </summary>
public sealed class LlamaDecoder : IDisposable
{
    private readonly LlamaModel _model;
    private readonly LlamaConfig _c;
    private readonly IComputeBackend _b;
    private readonly KvCache _cache;
    private readonly LlamaForwardPass _pass;     // buffers, targets and layer loop shared with the batched decoder
    private readonly int _maxBatch;
    private readonly bool _allLogits;
    private readonly float[] _hostLogits;        // [vocab] logits of the last token, on the host
    private readonly int[] _one = new int[1];    // the token of a decode step
    private readonly IDecodeStep? _decodeStep;   // the backend's replayable form of a decode step (CUDA graphs), or null
    private bool _disposed;

    /// <summary>Creates a decoder with its own KV cache; see <see cref="LlamaDecoderOptions"/>.</summary>
    public LlamaDecoder(LlamaModel model, LlamaDecoderOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        _model = model;
        _c = model.Config;
        _b = model.Backend;
        int ctx = options.ContextLength == 0 ? _c.ContextLength : options.ContextLength;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ctx, nameof(options.ContextLength));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxBatch, nameof(options.MaxBatch));
        ContextLength = ctx;
        _maxBatch = Math.Min(options.MaxBatch, ctx);
        _allLogits = options.AllLogits;

        _cache = _b.AllocateKvCache(_c.Layers, ctx, _c.KvDim);
        // Logits [maxBatch, vocab] with AllLogits, else [1, vocab].
        _pass = new LlamaForwardPass(model, _maxBatch, _allLogits ? _maxBatch : 1);
        _hostLogits = new float[_c.VocabSize];
        // A decode step (one token, last-row logits) always runs the same ops on this decoder's buffers, cache and
        // model: a backend that can record and replay it (IDecodeStepReplay) pays one launch per token.
        _decodeStep = (_b as IDecodeStepReplay)?.CreateDecodeStep(DecodeStepBody);
    }

    /// <summary>The model this decoder runs.</summary>
    public LlamaModel Model => _model;

    /// <summary>Positions in the KV cache.</summary>
    public int ContextLength { get; }

    /// <summary>Most tokens per forward step.</summary>
    public int MaxBatch => _maxBatch;

    /// <summary>Number of positions filled: the next token goes at this position.</summary>
    public int Position { get; private set; }

    /// <summary>Vocabulary size (length of a logits row).</summary>
    public int VocabSize => _c.VocabSize;

    /// <summary>Logits of the last token of the latest forward call (a view of an internal buffer, overwritten by the next call).</summary>
    public ReadOnlySpan<float> LastLogits => _hostLogits;

    /// <summary>Forgets the sequence: the next token goes at position 0.</summary>
    public void Reset() => Position = 0;

    /// <summary>Truncates the sequence to its first <paramref name="position"/> tokens (cache entries past it are overwritten later).</summary>
    public void Rewind(int position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(position, Position);
        Position = position;
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> at positions <see cref="Position"/>.. (in chunks of
    /// <see cref="MaxBatch"/>) and returns the logits of the last one, <c>[vocab]</c> f32.
    /// The span views an internal buffer that the next call overwrites.
    /// </summary>
    public ReadOnlySpan<float> Forward(scoped ReadOnlySpan<int> tokens)
    {
        CheckAppend(tokens.Length);
        for (int start = 0; start < tokens.Length; start += _maxBatch)
        {
            int n = Math.Min(_maxBatch, tokens.Length - start);
            bool last = start + n == tokens.Length;
            Step(tokens.Slice(start, n), headRows: last ? HeadRows.Last : HeadRows.None);
        }
        _b.Read(_pass.Logits, _hostLogits);
        return _hostLogits;
    }

    /// <summary>Appends one token (a decode step) and returns its logits, as <see cref="Forward(ReadOnlySpan{int})"/>.</summary>
    public ReadOnlySpan<float> Forward(int token)
    {
        _one[0] = token;
        return Forward(_one);
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> and writes the logits of every one of them to
    /// <paramref name="logits"/> <c>[n, vocab]</c> f32. Needs <see cref="LlamaDecoderOptions.AllLogits"/>.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, Span<float> logits)
    {
        if (!_allLogits) throw new InvalidOperationException("this decoder computes only the last token's logits; create it with AllLogits = true");
        int vocab = _c.VocabSize;
        ArgumentOutOfRangeException.ThrowIfLessThan(logits.Length, tokens.Length * vocab, nameof(logits));
        CheckAppend(tokens.Length);
        for (int start = 0; start < tokens.Length; start += _maxBatch)
        {
            int n = Math.Min(_maxBatch, tokens.Length - start);
            Step(tokens.Slice(start, n), HeadRows.All);
            _b.Read(_pass.Logits, logits.Slice(start * vocab, n * vocab));
        }
        logits.Slice((tokens.Length - 1) * vocab, vocab).CopyTo(_hostLogits);
    }

    private enum HeadRows { None, Last, All }

    private void CheckAppend(int n)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (n == 0) throw new ArgumentException("no tokens to process", "tokens");
        if (Position + n > ContextLength) ThrowContextFull(n);
    }

    [DoesNotReturn]
    private void ThrowContextFull(int n) =>
        throw new ContextFullException($"{n} more tokens at position {Position} exceed the context of {ContextLength} positions");

    /// <summary>One forward step over n ≤ MaxBatch tokens at positions Position..Position+n-1.</summary>
    private void Step(ReadOnlySpan<int> tokens, HeadRows headRows)
    {
        int n = tokens.Length;
        if (n == 1 && headRows == HeadRows.Last && _decodeStep is not null)
        {
            _one[0] = tokens[0];
            _pass.Positions[0] = Position;
            _decodeStep.Run(tokens[0], Position);
            Position++;
            return;
        }
        var positions = _pass.Positions[..n];
        for (int r = 0; r < n; r++) positions[r] = Position + r;

        var attention = new SequenceAttention(_cache);
        _pass.Run(tokens, ref attention);
        Position += n;

        switch (headRows)
        {
            case HeadRows.All:
                _pass.NormAllForHead(n);
                _pass.Head(n);                                                    // logits [n, vocab]
                break;
            case HeadRows.Last:
                // Only the last row's logits are needed to sample the next token.
                _pass.NormRowForHead(n - 1, 0);
                _pass.Head(1);                                                    // logits [1, vocab]
                break;
        }
    }

    /// <summary>
    /// The ops of a decode step (token <c>_one[0]</c> at <c>Positions[0]</c>, set by <see cref="Step"/>), the body the
    /// backend records: the same as <see cref="Step"/> with one token and <see cref="HeadRows.Last"/>.
    /// </summary>
    private void DecodeStepBody()
    {
        var attention = new SequenceAttention(_cache);
        _pass.Run(_one, ref attention);
        _pass.NormRowForHead(0, 0);
        _pass.Head(1);                                                            // logits [1, vocab]
    }

    /// <summary>One sequence: all rows of the step go to the one KV cache.</summary>
    private readonly struct SequenceAttention(KvCache cache) : ILlamaAttentionStep
    {
        public void Attend(LlamaForwardPass pass, int layer, ReadOnlySpan<int> positions)
        {
            var c = pass.Config;
            int n = positions.Length;
            pass.Backend.RopeStoreKvAttention(cache, layer, pass.Q, pass.K, pass.V, pass.Att, n, positions,
                c.Heads, c.KvHeads, c.HeadDim, c.RopeFreqBase, c.RopeStyle);                                      // att [n, dim]
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _decodeStep?.Dispose();
        _pass.Dispose();
        _cache.Dispose();
    }
}

/// <summary>More tokens than the KV cache has positions left.</summary>
public sealed class ContextFullException(string message) : Exception(message);
