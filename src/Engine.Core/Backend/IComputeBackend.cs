namespace Engine.Core.Backend;

/// <summary>
/// The ops a backend implements, as ggml's backend interface sits under its CPU and CUDA backends.
/// The decoder and encoder in Engine.Runtime are written against this interface only.
/// <para>
/// Conventions. Activations are f32 row-major batches: "<c>x [n, d]</c>" is n rows of d floats, for
/// n tokens processed together (n = 1 when decoding one token). Weights keep their file type.
/// Ops may run asynchronously on a device; <see cref="Read"/> waits for all earlier work.
/// No op allocates after warm-up on the CPU backend. Every op has a scalar reference in
/// Engine.Cpu's <c>ReferenceBackend</c>, and tests compare each backend to it with a named tolerance.
/// </para>
/// </summary>
public interface IComputeBackend : IDisposable
{
    /// <summary>Short name for logs ("cpu-avx2", "reference", "ilgpu-cuda: NVIDIA H100", …).</summary>
    string Name { get; }

    // ---- memory -------------------------------------------------------------------------------

    /// <summary>Uploads (or, on the CPU, wraps without copying) a weight tensor. Types: F32, F16, BF16, Q8_0.</summary>
    DeviceWeight LoadWeight(Tensors.TensorView tensor);

    /// <summary>A zeroed f32 buffer of <paramref name="length"/> elements.</summary>
    DeviceBuffer Allocate(int length);

    /// <summary>A zeroed KV cache for one sequence.</summary>
    KvCache AllocateKvCache(int layers, int contextLength, int kvDim);

    /// <summary>Copies host floats into <paramref name="dst"/> starting at element 0.</summary>
    void Write(DeviceBuffer dst, ReadOnlySpan<float> src);

    /// <summary>Copies the first <c>dst.Length</c> elements of <paramref name="src"/> to the host; waits for pending work.</summary>
    void Read(DeviceBuffer src, Span<float> dst);

    // ---- ops ----------------------------------------------------------------------------------

    /// <summary><c>dst [n, table.Cols]</c> = rows <paramref name="tokens"/> of <paramref name="table"/>, dequantized to f32.</summary>
    void Embed(DeviceWeight table, ReadOnlySpan<int> tokens, DeviceBuffer dst);

    /// <summary>
    /// RMSNorm of each row: <c>dst[r, i] = x[r, i] / sqrt(mean(x[r]²) + eps) * weight[i]</c>
    /// (computed in f32, as ggml_rms_norm then ggml_mul). x and dst are <c>[n, dim]</c>; weight is <c>[dim]</c>.
    /// dst may equal x.
    /// </summary>
    void RmsNorm(DeviceBuffer x, DeviceWeight weight, DeviceBuffer dst, int n, int dim, float eps);

    /// <summary>
    /// Fused matrix products sharing one input: for each target, <c>Output [n, Weight.Rows] = x [n, cols] · Weightᵀ</c>.
    /// For Q8_0 weights the input rows are first quantized to Q8_0 blocks (once, shared by all targets)
    /// and the dot products are int8 × int8 with int32 accumulation per block, then scaled by both block
    /// scales, as llama.cpp's <c>ggml_vec_dot_q8_0_q8_0</c>. For F32/F16/BF16 weights the product is in f32.
    /// All targets must have the same <c>Cols</c>.
    /// </summary>
    void MatMul(DeviceBuffer x, int n, ReadOnlySpan<MatMulTarget> targets);

    /// <summary>Adds a bias vector to each row: <c>y[r, i] += bias[i]</c>; y is <c>[n, bias.Cols]</c>.</summary>
    void AddBias(DeviceBuffer y, DeviceWeight bias, int n);

    /// <summary>
    /// Rotary position embedding in place on <c>x [n, heads * headDim]</c>; row r is at position
    /// <c>positions[r]</c>. Pair (a, b) of dimension pair i rotates by angle
    /// <c>pos * freqBase^(-2i/headDim)</c>. <see cref="RopeStyle"/> says which elements pair up.
    /// </summary>
    void Rope(DeviceBuffer x, int n, int heads, int headDim, ReadOnlySpan<int> positions, float freqBase, RopeStyle style);

    /// <summary>Stores rows of <c>k, v [n, kvDim]</c> into the cache of <paramref name="layer"/> at <c>positions[r]</c>.</summary>
    void StoreKv(KvCache cache, int layer, DeviceBuffer k, DeviceBuffer v, int n, ReadOnlySpan<int> positions);

    // ---- fused decoder ops --------------------------------------------------------------------
    // Each is defined by the unfused ops it replaces (the default bodies below), so the CPU and reference
    // backends need nothing; a device backend overrides them to save kernel launches per token.

    /// <summary>
    /// RoPE on <c>q [n, heads * headDim]</c> and <c>k [n, kvHeads * headDim]</c> in place, then the KV store of
    /// k and <c>v [n, kvHeads * headDim]</c>: the same as <see cref="Rope"/> on q, <see cref="Rope"/> on k and
    /// <see cref="StoreKv"/>.
    /// </summary>
    void RopeStoreKv(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, int n, ReadOnlySpan<int> positions,
                     int heads, int kvHeads, int headDim, float freqBase, RopeStyle style)
    {
        Rope(q, n, heads, headDim, positions, freqBase, style);
        Rope(k, n, kvHeads, headDim, positions, freqBase, style);
        StoreKv(cache, layer, k, v, n, positions);
    }

    /// <summary>
    /// <see cref="RopeStoreKv"/> then <see cref="Attention"/> of the rotated q into <paramref name="output"/>
    /// (a decode step's whole attention block between the q/k/v products and the output projection).
    /// </summary>
    void RopeStoreKvAttention(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output, int n,
                              ReadOnlySpan<int> positions, int heads, int kvHeads, int headDim, float freqBase, RopeStyle style)
    {
        RopeStoreKv(cache, layer, q, k, v, n, positions, heads, kvHeads, headDim, freqBase, style);
        Attention(cache, layer, q, output, n, positions, heads, kvHeads, headDim);
    }

    /// <summary>
    /// RoPE + KV store + causal attention for several streams in one call (continuous batching): segment s owns rows
    /// <c>[offsets[s], offsets[s] + counts[s])</c> of <c>q [n, heads * headDim]</c>, <c>k, v [n, kvHeads * headDim]</c> and
    /// <c>output [n, heads * headDim]</c>, and <c>caches[s]</c>; <c>positions [n]</c> give each row's position (indexed by row,
    /// not by segment). The same as <see cref="RopeStoreKvAttention"/> on each segment's rows. A segment with count 0 is skipped.
    /// <para>
    /// The default body checks every segment first (bad input throws before any cache is touched), then runs
    /// <see cref="RopeStoreKvAttention"/> per segment on <see cref="DeviceBuffer.Slice"/> views it makes and disposes
    /// for the call: it allocates four small view objects per segment. Backends on a zero-allocation decode path
    /// (CPU, ILGPU) override it, which also lets them run all segments' heads in one dispatch.
    /// </para>
    /// </summary>
    void RopeStoreKvAttentionBatch(ReadOnlySpan<KvCache> caches, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts, int layer,
                                   DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output, ReadOnlySpan<int> positions,
                                   int heads, int kvHeads, int headDim, float freqBase, RopeStyle style)
    {
        BatchSegments.Check(caches, offsets, counts, layer, q, k, v, output, positions, heads, kvHeads, headDim);
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        for (int s = 0; s < caches.Length; s++)
        {
            int o = offsets[s], c = counts[s];
            if (c == 0) continue;
            using var qs = q.Slice(o * qWidth, c * qWidth);
            using var ks = k.Slice(o * kvWidth, c * kvWidth);
            using var vs = v.Slice(o * kvWidth, c * kvWidth);
            using var os = output.Slice(o * qWidth, c * qWidth);
            RopeStoreKvAttention(caches[s], layer, qs, ks, vs, os, c, positions.Slice(o, c), heads, kvHeads, headDim, freqBase, style);
        }
    }

    /// <summary>
    /// Matrix product added into a residual stream: <c>residual [n, Weight.Rows] += x [n, cols] · Weightᵀ</c>,
    /// with <see cref="MatMul"/>'s arithmetic. <c>target.Output</c> is scratch the unfused form writes the product
    /// to before <see cref="Add"/>; a fused backend may leave it untouched, so its contents are undefined after.
    /// </summary>
    void MatMulAdd(DeviceBuffer x, int n, MatMulTarget target, DeviceBuffer residual)
    {
        MatMul(x, n, new ReadOnlySpan<MatMulTarget>(in target));
        Add(residual, target.Output, n * target.Weight.Rows);
    }

    /// <summary>
    /// Causal grouped-query attention: for each row r of <c>q [n, heads * headDim]</c>, each head h
    /// attends over cache positions <c>0..positions[r]</c> of KV head <c>h / (heads / kvHeads)</c>,
    /// scores scaled by <c>1/sqrt(headDim)</c>, softmax in f32, and writes the weighted sum of values
    /// to <c>output [n, heads * headDim]</c>.
    /// </summary>
    void Attention(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer output, int n, ReadOnlySpan<int> positions, int heads, int kvHeads, int headDim);

    /// <summary>SwiGLU: <c>dst[i] = silu(gate[i]) * up[i]</c> for the first <paramref name="count"/> elements (silu(x) = x / (1 + e^-x)). dst may equal gate.</summary>
    void SwiGlu(DeviceBuffer gate, DeviceBuffer up, DeviceBuffer dst, int count);

    /// <summary>Residual add in place: <c>x[i] += y[i]</c> for the first <paramref name="count"/> elements.</summary>
    void Add(DeviceBuffer x, DeviceBuffer y, int count);

    // ---- encoder ops (BERT) -------------------------------------------------------------------

    /// <summary>
    /// LayerNorm of each row: <c>dst[r, i] = (x[r, i] - mean_r) / sqrt(var_r + eps) * weight[i] + bias[i]</c>,
    /// var_r the population variance of row r, computed in f32. x and dst are <c>[n, dim]</c>; weight and
    /// bias are <c>[dim]</c>. dst may equal x.
    /// </summary>
    void LayerNorm(DeviceBuffer x, DeviceWeight weight, DeviceWeight bias, DeviceBuffer dst, int n, int dim, float eps);

    /// <summary>
    /// Exact (erf) GELU, as BERT: <c>dst[i] = 0.5 x (1 + erf(x / sqrt 2))</c> for the first
    /// <paramref name="count"/> elements. dst may equal x.
    /// </summary>
    void Gelu(DeviceBuffer x, DeviceBuffer dst, int count);

    /// <summary>Row-wise softmax in place on <c>x [n, dim]</c> (max-subtracted, f32).</summary>
    void Softmax(DeviceBuffer x, int n, int dim);

    /// <summary>
    /// Masked bidirectional multi-head attention over packed sequences (the encoder's attention).
    /// q, k, v and output are <c>[n, heads * headDim]</c>; the n rows are consecutive sequences whose
    /// lengths are <paramref name="sequenceLengths"/> (sum = n). Each row attends, per head, to every row
    /// of its own sequence and to no other (what a padding attention mask does), scores multiplied by
    /// <paramref name="scale"/>, softmax in f32.
    /// </summary>
    void EncoderAttention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output,
                          ReadOnlySpan<int> sequenceLengths, int heads, int headDim, float scale);
}
