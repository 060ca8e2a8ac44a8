using Engine.Core.Backend;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

// Positions: RoPE, the KV store and attention (decode as split-position chunks plus a merge, or one group per
// head; prefill causal), with their argument checks and the cached RoPE frequency tables.
public sealed partial class IlgpuBackend
{
    public void Rope(DeviceBuffer x, int n, int heads, int headDim, ReadOnlySpan<int> positions, float freqBase, RopeStyle style)
    {
        if (n == 0) return;
        if (positions.Length < n) throw new ArgumentException($"{positions.Length} positions for {n} rows", nameof(positions));
        if (headDim % 2 != 0) throw new ArgumentException($"head dimension {headDim} is odd", nameof(headDim));
        var xv = V(x);
        CheckLength(xv, (long)n * heads * headDim, nameof(x));
        var pos = PositionsFor(positions, n, int.MaxValue, out int position0);
        var p = new RopeParams { N = n, Heads = heads, HeadDim = headDim, Position0 = position0, NeoX = style == RopeStyle.NeoX ? 1 : 0 };
        Forget();
        if (Launch())
            _rope(_stream, n * heads * (headDim / 2), xv, pos, RopeFrequencies(freqBase, headDim), p);
    }

    public void StoreKv(KvCache cache, int layer, DeviceBuffer k, DeviceBuffer v, int n, ReadOnlySpan<int> positions)
    {
        var c = C(cache);
        if (n == 0) return;
        CheckPositions(c, positions, n);
        var kv = V(k);
        var vv = V(v);
        CheckLength(kv, (long)n * c.KvDim, nameof(k));
        CheckLength(vv, (long)n * c.KvDim, nameof(v));
        var pos = PositionsFor(positions, n, c.ContextLength, out int position0);
        if (Launch())
            _kvStore(_stream, n * c.KvDim, kv, vv, c.Keys, c.Values, pos, position0, n, c.KvDim, c.LayerBase(layer));
    }

    public void Attention(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer output, int n, ReadOnlySpan<int> positions, int heads, int kvHeads, int headDim)
    {
        var c = C(cache);
        if (n == 0) return;
        CheckAttention(c, positions, n, heads, kvHeads, headDim);
        var qv = V(q);
        var ov = V(output);
        CheckLength(qv, (long)n * heads * headDim, nameof(q));
        CheckLength(ov, (long)n * heads * headDim, nameof(output));
        var pos = PositionsFor(positions, n, c.ContextLength, out int position0);
        LaunchAttention(c, layer, qv, output, ov, n, pos, position0, heads, kvHeads, headDim, fused: false, _dummyFloat, _dummyFloat, _dummyFloat, neoX: false);
    }

    /// <summary>RoPE on q and k and the KV store in one launch (one thread per dimension pair of every q and k head).</summary>
    public void RopeStoreKv(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, int n, ReadOnlySpan<int> positions,
        int heads, int kvHeads, int headDim, float freqBase, RopeStyle style)
    {
        var c = C(cache);
        if (n == 0) return;
        CheckPositions(c, positions, n);
        if (headDim % 2 != 0) throw new ArgumentException($"head dimension {headDim} is odd", nameof(headDim));
        if (kvHeads * headDim != c.KvDim) throw new ArgumentException($"{kvHeads} KV heads × {headDim} ≠ cache width {c.KvDim}");
        var qv = V(q);
        var kv = V(k);
        var vv = V(v);
        CheckLength(qv, (long)n * heads * headDim, nameof(q));
        CheckLength(kv, (long)n * c.KvDim, nameof(k));
        CheckLength(vv, (long)n * c.KvDim, nameof(v));
        var pos = PositionsFor(positions, n, c.ContextLength, out int position0);
        var p = new RopeStoreParams
        {
            N = n, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, KvDim = c.KvDim, Position0 = position0,
            NeoX = style == RopeStyle.NeoX ? 1 : 0, LayerBase = c.LayerBase(layer),
        };
        Forget();
        if (Launch())
            _ropeStore(_stream, n * (heads + kvHeads) * (headDim / 2), qv, kv, vv, c.Keys, c.Values, pos, RopeFrequencies(freqBase, headDim), p);
    }

    /// <summary>
    /// Decode (n = 1): RoPE, KV store and attention in one launch (the attention kernel rotates q and the fresh
    /// key itself and stores k/v). Several rows: <see cref="RopeStoreKv"/> then <see cref="Attention"/>.
    /// In the one-launch form q and k are left unrotated (their contents after the op are not part of its result).
    /// </summary>
    public void RopeStoreKvAttention(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output, int n,
        ReadOnlySpan<int> positions, int heads, int kvHeads, int headDim, float freqBase, RopeStyle style)
    {
        if (n == 0) return;
        if (n > 1)
        {
            RopeStoreKv(cache, layer, q, k, v, n, positions, heads, kvHeads, headDim, freqBase, style);
            Attention(cache, layer, q, output, n, positions, heads, kvHeads, headDim);
            return;
        }
        var c = C(cache);
        CheckAttention(c, positions, n, heads, kvHeads, headDim);
        if (headDim % 2 != 0) throw new ArgumentException($"head dimension {headDim} is odd", nameof(headDim));
        var qv = V(q);
        var kv = V(k);
        var vv = V(v);
        var ov = V(output);
        CheckLength(qv, (long)heads * headDim, nameof(q));
        CheckLength(kv, c.KvDim, nameof(k));
        CheckLength(vv, c.KvDim, nameof(v));
        CheckLength(ov, (long)heads * headDim, nameof(output));
        var pos = PositionsFor(positions, 1, c.ContextLength, out int position0);
        LaunchAttention(c, layer, qv, output, ov, 1, pos, position0, heads, kvHeads, headDim, fused: true, kv, vv,
            RopeFrequencies(freqBase, headDim), style == RopeStyle.NeoX);
    }

    /// <summary>
    /// Decode attention (n = 1) as split-position chunks plus a merge (two launches; default), or as one group per
    /// head walking every position (false; A/B runs and tests). Environment: <c>ENGINE_SPLIT_ATTENTION=0</c> turns it off.
    /// </summary>
    public bool SplitAttention { get; set; } = Environment.GetEnvironmentVariable("ENGINE_SPLIT_ATTENTION") != "0";

    /// <summary>Environment variable: <c>0</c> turns <see cref="FlashDecode"/> off for backends created afterwards (A/B runs).</summary>
    public const string FlashDecodeVariable = "ENGINE_FLASH_DECODE";

    /// <summary>
    /// Split decode attention as one flash-decoding launch (<see cref="AttentionKernel.KernelFlashDecode"/>: online softmax
    /// in registers, no score stored, the last chunk of each head merges) instead of split chunks plus a merge launch
    /// (false; <see cref="FlashDecodeVariable"/>=0). Applies where <see cref="SplitAttention"/> does and the shape fits
    /// (<see cref="AttentionKernel.FlashDecodeFits"/>: not on ILGPU's default CPU device, whose warps have 2 lanes).
    /// </summary>
    public bool FlashDecode { get; set; } = Environment.GetEnvironmentVariable(FlashDecodeVariable) != "0";

    /// <summary>Which decode attention form runs for <paramref name="headDim"/> (benchmark and log lines).</summary>
    public string DecodeAttentionForm(int headDim) =>
        !SplitAttention ? "one group per head" : UsesFlash(headDim) ? "flash (1 launch)" : "split + merge (2 launches)";

    /// <summary>Whether split decode attention and the batched attention run the flash kernels for <paramref name="headDim"/>.</summary>
    internal bool UsesFlash(int headDim) => FlashDecode && AttentionKernel.FlashDecodeFits(headDim, _accelerator.WarpSize, Math.Min(128, _attentionGroup));

    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>,
        ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams> _flashDecode = null!;
    private MemoryBuffer1D<int, Stride1D.Dense>? _flashCounters; // [heads] int: zero between launches

    private void InitFlashDecode() =>
        _flashDecode = _accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>,
            ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>(AttentionKernel.KernelFlashDecode);

    /// <summary>The flash kernels' per-head counters, zeroed when (re)allocated; each launch leaves them at zero.</summary>
    private ArrayView<int> FlashCounters(int heads)
    {
        if (_flashCounters is null || _flashCounters.Length < heads)
        {
            ScratchChanging();
            _flashCounters?.Dispose();
            _flashCounters = _accelerator.Allocate1D<int>(heads);
            _flashCounters.MemSetToZero(_stream);
        }
        return _flashCounters.View.SubView(0, heads);
    }

    /// <summary>Tests: positions per split-decode chunk (0: <see cref="AttentionKernel.ChunkLengthFor"/>), so small caches span several chunks.</summary>
    internal int AttentionChunkLength { get; set; }

    private void LaunchAttention(GpuKvCache c, int layer, ArrayView<float> qv, DeviceBuffer output, ArrayView<float> ov, int n, ArrayView<int> pos,
        int position0, int heads, int kvHeads, int headDim, bool fused, ArrayView<float> kNew, ArrayView<float> vNew, ArrayView<float> freq, bool neoX)
    {
        // Decode (n = 1): split positions into chunks over heads × chunks groups (AttentionKernel.SplitKernel), then
        // merge; the grid depends only on the context length (graph replay). The scores scratch holds the partials.
        bool split = n == 1 && SplitAttention;
        int chunkLength = AttentionChunkLength > 0 ? AttentionChunkLength : AttentionKernel.ChunkLengthFor(c.ContextLength);
        int chunks = DivUp(c.ContextLength, chunkLength);
        var scores = Scratch(ref _scores, split ? (long)heads * chunks * (headDim + 2) : (long)n * heads * c.ContextLength);
        bool quantize = headDim % 32 == 0;
        var p = new AttentionParams
        {
            N = n, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, KvDim = c.KvDim, ContextLength = c.ContextLength,
            Position0 = position0, LayerBase = c.LayerBase(layer), Scale = 1f / MathF.Sqrt(headDim), Quantize = quantize ? 1 : 0,
            Fused = fused ? 1 : 0, NeoX = neoX ? 1 : 0, Chunks = chunks, ChunkLength = chunkLength,
        };
        long width = (long)n * heads * headDim;
        var xq = quantize ? Scratch(ref _xq, width / 4) : _dummyInt;
        var xd = quantize ? Scratch(ref _xd, width / 32) : _dummyFloat;
        Forget();
        int splitGroup = Math.Min(128, _attentionGroup);
        if (split && UsesFlash(headDim))
        {
            var counters = FlashCounters(heads);
            if (Launch())
                _flashDecode(_stream, Config2D(heads, chunks, splitGroup), qv, c.Keys, c.Values, scores, counters, ov, pos, xq, xd, kNew, vNew, freq, p);
        }
        else if (split)
        {
            int w = _accelerator.WarpSize;
            int combineGroup = Math.Min(_attentionGroup, DivUp(headDim, w) * w);
            if (Launch())
                _attentionSplit(_stream, Config2D(heads, chunks, splitGroup), qv, c.Keys, c.Values, scores, pos, kNew, vNew, freq, p);
            if (Launch())
                _attentionCombine(_stream, Config2D(heads, 1, combineGroup), scores, ov, pos, xq, xd, p);
        }
        else if (Launch())
            _attention(_stream, Config2D(heads, n, _attentionGroup), qv, c.Keys, c.Values, scores, ov, pos, xq, xd, kNew, vNew, freq, p);
        if (quantize) Remember(output, width);
    }

    private static void CheckAttention(GpuKvCache c, ReadOnlySpan<int> positions, int n, int heads, int kvHeads, int headDim)
    {
        CheckPositions(c, positions, n);
        if (kvHeads <= 0 || heads % kvHeads != 0) throw new ArgumentException($"{heads} heads are not a multiple of {kvHeads} KV heads");
        if (kvHeads * headDim != c.KvDim) throw new ArgumentException($"{kvHeads} KV heads × {headDim} ≠ cache width {c.KvDim}");
        if (headDim > AttentionKernel.MaxHeadDim) throw new ArgumentException($"head dimension {headDim} exceeds {AttentionKernel.MaxHeadDim}", nameof(headDim));
    }

    /// <summary><c>freq[i] = base^(-2i/headDim)</c> with the reference's MathF.Pow, uploaded once per (base, headDim).</summary>
    private ArrayView<float> RopeFrequencies(float freqBase, int headDim)
    {
        if (!_ropeFreqs.TryGetValue((freqBase, headDim), out var buffer))
        {
            ScratchChanging();
            var f = new float[headDim / 2];
            for (int i = 0; i < f.Length; i++) f[i] = MathF.Pow(freqBase, -2f * i / headDim);
            buffer = _accelerator.Allocate1D(f);
            _ropeFreqs[(freqBase, headDim)] = buffer;
        }
        return buffer.View;
    }

    private static void CheckPositions(GpuKvCache c, ReadOnlySpan<int> positions, int n)
    {
        if (positions.Length < n) throw new ArgumentException($"{positions.Length} positions for {n} rows", nameof(positions));
        for (int r = 0; r < n; r++)
            if ((uint)positions[r] >= (uint)c.ContextLength)
                throw new ArgumentOutOfRangeException(nameof(positions), $"position {positions[r]} outside the context of {c.ContextLength}");
    }
}
