using System.Diagnostics;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Tensors;

namespace Engine.Cli.Bench;

/// <summary>
/// A backend decorator that times every op of the backend it wraps (wall time per call, summed by op
/// and shape), to say where a decode step's time goes. The CPU backend's ops are synchronous, so the
/// wall time of a call is the op's time; an asynchronous backend would need a <see cref="Read"/> to
/// drain first. The timing costs about a Stopwatch read per op, so profiled runs are not the
/// benchmark's timed rounds.
/// </summary>
internal sealed class ProfilingBackend(IComputeBackend inner) : IComputeBackend
{
    private readonly Dictionary<string, OpStats> _stats = new(StringComparer.Ordinal);

    /// <summary>Totals per op key (e.g. <c>MatMul Q8_0 576→1536×2</c>).</summary>
    public IReadOnlyDictionary<string, OpStats> Stats => _stats;

    /// <summary>Forgets the totals (after warm-up).</summary>
    public void Reset() => _stats.Clear();

    public string Name => inner.Name;

    public DeviceWeight LoadWeight(TensorView tensor) => inner.LoadWeight(tensor);

    public DeviceBuffer Allocate(int length) => inner.Allocate(length);

    public KvCache AllocateKvCache(int layers, int contextLength, int kvDim) => inner.AllocateKvCache(layers, contextLength, kvDim);

    public void Write(DeviceBuffer dst, ReadOnlySpan<float> src)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Write(dst, src);
        Record("Write", t, 0);
    }

    public void Read(DeviceBuffer src, Span<float> dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Read(src, dst);
        Record("Read", t, 0);
    }

    public void Embed(DeviceWeight table, ReadOnlySpan<int> tokens, DeviceBuffer dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Embed(table, tokens, dst);
        Record($"Embed {table.Type}", t, 0);
    }

    public void RmsNorm(DeviceBuffer x, DeviceWeight weight, DeviceBuffer dst, int n, int dim, float eps)
    {
        long t = Stopwatch.GetTimestamp();
        inner.RmsNorm(x, weight, dst, n, dim, eps);
        Record($"RmsNorm {dim}", t, 0);
    }

    public void MatMul(DeviceBuffer x, int n, ReadOnlySpan<MatMulTarget> targets)
    {
        long t = Stopwatch.GetTimestamp();
        inner.MatMul(x, n, targets);
        long bytes = 0;
        foreach (var target in targets) bytes += WeightBytes(target.Weight);
        Record(MatMulKey(targets), t, bytes);
    }

    public void AddBias(DeviceBuffer y, DeviceWeight bias, int n)
    {
        long t = Stopwatch.GetTimestamp();
        inner.AddBias(y, bias, n);
        Record("AddBias", t, 0);
    }

    public void Rope(DeviceBuffer x, int n, int heads, int headDim, ReadOnlySpan<int> positions, float freqBase, RopeStyle style)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Rope(x, n, heads, headDim, positions, freqBase, style);
        Record($"Rope {heads}×{headDim}", t, 0);
    }

    public void StoreKv(KvCache cache, int layer, DeviceBuffer k, DeviceBuffer v, int n, ReadOnlySpan<int> positions)
    {
        long t = Stopwatch.GetTimestamp();
        inner.StoreKv(cache, layer, k, v, n, positions);
        Record("StoreKv", t, 0);
    }

    public void Attention(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer output, int n, ReadOnlySpan<int> positions, int heads, int kvHeads, int headDim)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Attention(cache, layer, q, output, n, positions, heads, kvHeads, headDim);
        Record($"Attention {heads}/{kvHeads}×{headDim}", t, 0);
    }

    public void RopeStoreKvAttentionBatch(ReadOnlySpan<KvCache> caches, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts, int layer,
                                          DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output, ReadOnlySpan<int> positions,
                                          int heads, int kvHeads, int headDim, float freqBase, RopeStyle style)
    {
        // Timed as one op (RoPE, KV store and attention of every segment): the inner backend's batched form is what runs.
        long t = Stopwatch.GetTimestamp();
        inner.RopeStoreKvAttentionBatch(caches, offsets, counts, layer, q, k, v, output, positions, heads, kvHeads, headDim, freqBase, style);
        Record($"RoPE+KV+Attention batch {heads}/{kvHeads}×{headDim}", t, 0);
    }

    public void SwiGlu(DeviceBuffer gate, DeviceBuffer up, DeviceBuffer dst, int count)
    {
        long t = Stopwatch.GetTimestamp();
        inner.SwiGlu(gate, up, dst, count);
        Record("SwiGlu", t, 0);
    }

    public void Add(DeviceBuffer x, DeviceBuffer y, int count)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Add(x, y, count);
        Record("Add", t, 0);
    }

    public void LayerNorm(DeviceBuffer x, DeviceWeight weight, DeviceWeight bias, DeviceBuffer dst, int n, int dim, float eps)
    {
        long t = Stopwatch.GetTimestamp();
        inner.LayerNorm(x, weight, bias, dst, n, dim, eps);
        Record($"LayerNorm {dim}", t, 0);
    }

    public void Gelu(DeviceBuffer x, DeviceBuffer dst, int count)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Gelu(x, dst, count);
        Record("Gelu", t, 0);
    }

    public void Softmax(DeviceBuffer x, int n, int dim)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Softmax(x, n, dim);
        Record($"Softmax {dim}", t, 0);
    }

    public void EncoderAttention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output,
                                 ReadOnlySpan<int> sequenceLengths, int heads, int headDim, float scale)
    {
        long t = Stopwatch.GetTimestamp();
        inner.EncoderAttention(q, k, v, output, sequenceLengths, heads, headDim, scale);
        Record($"EncoderAttention {heads}×{headDim}", t, 0);
    }

    public void Dispose() => inner.Dispose();

    private static string MatMulKey(ReadOnlySpan<MatMulTarget> targets)
    {
        var first = targets[0].Weight;
        var parts = new List<string>(targets.Length);
        foreach (var target in targets) parts.Add(target.Weight.Rows.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return $"MatMul {first.Type} {first.Cols}→{string.Join("+", parts)}";
    }

    private static long WeightBytes(DeviceWeight w) => GgmlTypeInfo.RowBytes(w.Type, w.Cols) * w.Rows;

    private void Record(string key, long start, long bytes)
    {
        long elapsed = Stopwatch.GetTimestamp() - start;
        if (!_stats.TryGetValue(key, out var s)) _stats[key] = s = new OpStats();
        s.Calls++;
        s.Ticks += elapsed;
        s.WeightBytes += bytes;
    }
}

/// <summary>Totals of one op key.</summary>
internal sealed class OpStats
{
    public long Calls;
    public long Ticks;
    /// <summary>Weight bytes the calls read (matrix products only).</summary>
    public long WeightBytes;

    public double Seconds => (double)Ticks / Stopwatch.Frequency;
}
