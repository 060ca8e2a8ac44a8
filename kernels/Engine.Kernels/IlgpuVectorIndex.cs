using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// A product-vector index on the device: N vectors of <see cref="Dims"/> int8 values with one f32 scale
/// each (vector v stands for <c>scale[v] · m[v, :]</c>). <see cref="Search"/> scores a batch of f32
/// queries against every allowed vector and returns the top k by score, ties to the smaller id.
/// <para>
/// Two forms, both kept selectable so one GPU run measures them side by side:
/// <list type="bullet">
/// <item>Wide (default, <see cref="WideScan"/> and <see cref="TileSelect"/>; dims a multiple of 16 up to
/// <see cref="SimilarityKernel.MaxWideDims"/>): the query is quantized to int16 on the host
/// (<see cref="SimilarityKernel.QuantizeQuery"/>, the SIMD CPU scanner's scheme), <see cref="SimilarityKernel.KernelWide"/>
/// reads each vector in 16-byte loads with <c>dp2a</c> and writes every score plus one maximum per tile, and
/// <see cref="TopKSelectKernel.KernelTiles"/> selects the exact top k from the few tiles whose maximum reaches the
/// k-th best maximum: two launches per search. Where that selection overflows (many equal scores) the tree passes
/// below finish it, with the same result.</item>
/// <item>Previous (<c>ENGINE_TOPK_WIDE_SCAN=0</c>, or dims that do not fit): f32 query, <see cref="SimilarityKernel.Kernel"/>
/// (one warp per vector, 4-byte loads), then <see cref="TopKSelectKernel.Kernel"/> passes until one chunk is left.
/// <c>ENGINE_TOPK_TILE_SELECT=0</c> keeps the wide scan with the tree passes.</item>
/// </list>
/// </para>
/// Rows can be rewritten one at a time (<see cref="WriteRow"/>) and the index grown (<see cref="EnsureCapacity"/>)
/// without re-uploading the rest, which is what a product index's upserts need.
/// </summary>
public sealed class IlgpuVectorIndex : IDisposable
{
    private readonly IlgpuDevice _device;
    private readonly Accelerator _accelerator;
    private MemoryBuffer1D<int, Stride1D.Dense> _vectors; // [count, dims/4] int: four int8 each
    private MemoryBuffer1D<float, Stride1D.Dense> _scales; // [count] f32
    private MemoryBuffer1D<uint, Stride1D.Dense> _filter;  // [ceil(count/32)] bitmap
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _dummyIds;
    private MemoryBuffer1D<float, Stride1D.Dense>? _queries; // [batch, dims]
    private MemoryBuffer1D<float, Stride1D.Dense>? _scoresA; // [batch, count] then pass outputs
    private MemoryBuffer1D<float, Stride1D.Dense>? _scoresB;
    private MemoryBuffer1D<int, Stride1D.Dense>? _idsA;
    private MemoryBuffer1D<int, Stride1D.Dense>? _idsB;
    private MemoryBuffer1D<int, Stride1D.Dense>? _queriesQ;  // [batch, dims/2] int16 pairs, then [batch] f32 scale bits
    private MemoryBuffer1D<float, Stride1D.Dense>? _tileMax; // [batch, tiles] f32
    private MemoryBuffer1D<int, Stride1D.Dense>? _results;   // [batch, k] ids, [batch, k] f32 score bits, [batch] status
    private short[] _hostShort = [];                          // [dims] one quantized query
    private int[] _hostQ = [];                                // [batch * dims/2 + batch] upload staging
    private int[] _hostResults = [];                          // [batch * (2k + 1)] download staging

    private readonly Action<KernelConfig, ArrayView<int>, ArrayView<float>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, SimilarityParams> _similarity;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, TopKParams> _select;
    private readonly Action<KernelConfig, ArrayView<Int8x16>, ArrayView<float>, ArrayView<uint>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, WideSimilarityParams> _wide;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, TileSelectParams> _tileSelect;

    /// <summary>Environment variable: <c>0</c> selects the previous f32 scan (and with it the tree selection).</summary>
    public const string WideScanVariable = "ENGINE_TOPK_WIDE_SCAN";

    /// <summary>Environment variable: <c>0</c> keeps the wide scan but selects with the tree passes.</summary>
    public const string TileSelectVariable = "ENGINE_TOPK_TILE_SELECT";

    /// <summary>Fewest vectors per scan group (tile); more where the index has over <see cref="TopKSelectKernel.MaxTiles"/> of these.</summary>
    public const int MinTileRows = 256;

    /// <summary>Uploads <paramref name="vectors"/> (<c>[count, dims]</c> int8) and their <paramref name="scales"/>.</summary>
    public IlgpuVectorIndex(IlgpuDevice device, ReadOnlySpan<sbyte> vectors, ReadOnlySpan<float> scales, int dims)
    {
        if (dims <= 0 || dims % 4 != 0) throw new ArgumentException($"dimension {dims} is not a positive multiple of 4", nameof(dims));
        if (vectors.Length != (long)scales.Length * dims)
            throw new ArgumentException($"{vectors.Length} int8 values are not {scales.Length} vectors of {dims}", nameof(vectors));
        _device = device;
        _accelerator = device.Accelerator;
        Dims = dims;
        Count = scales.Length;
        _vectors = _accelerator.Allocate1D<int>(Math.Max(1, vectors.Length / 4));
        ArrayView<int> v = _vectors.View;
        if (vectors.Length > 0) v.SubView(0, vectors.Length / 4).CopyFromCPU(System.Runtime.InteropServices.MemoryMarshal.Cast<sbyte, int>(vectors));
        _scales = _accelerator.Allocate1D<float>(Math.Max(1, Count));
        ArrayView<float> s = _scales.View;
        if (Count > 0) s.SubView(0, Count).CopyFromCPU(scales);
        _filter = _accelerator.Allocate1D<uint>(Math.Max(1, (Count + 31) / 32));
        _dummyIds = _accelerator.Allocate1D<int>(1);
        _similarity = _accelerator.LoadStreamKernel<ArrayView<int>, ArrayView<float>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, SimilarityParams>(SimilarityKernel.Kernel);
        _select = _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, TopKParams>(TopKSelectKernel.Kernel);
        _wide = _accelerator.LoadStreamKernel<ArrayView<Int8x16>, ArrayView<float>, ArrayView<uint>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, WideSimilarityParams>(SimilarityKernel.KernelWide);
        _selectGroup = SelectGroupFor(_accelerator);
        // Launch bound (.maxntid in the PTX): ptxas keeps the kernel within 65,536 / 512 = 128 registers a thread, so the
        // 512-thread launch cannot fail for want of registers on sm_90 (it would spill instead); no bound let ptxas use up to 255.
        _tileSelect = _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, TileSelectParams>(
            TopKSelectKernel.KernelTiles, SelectSpecialization(_selectGroup));
        WideScan = Environment.GetEnvironmentVariable(WideScanVariable) != "0";
        TileSelect = Environment.GetEnvironmentVariable(TileSelectVariable) != "0";
    }

    /// <summary>An index of <paramref name="count"/> zero vectors (scale 0) of <paramref name="dims"/> values, to be filled by <see cref="WriteRow"/>.</summary>
    public IlgpuVectorIndex(IlgpuDevice device, int dims, int count)
        : this(device, new sbyte[(long)count * dims], new float[count], dims) { }

    /// <summary>Number of vectors (rows); <see cref="Search"/> scans them all unless told fewer.</summary>
    public int Count { get; private set; }

    /// <summary>Grows to at least <paramref name="count"/> rows, keeping every row (copied on the device); new rows are zero.</summary>
    public void EnsureCapacity(int count)
    {
        if (count <= Count) return;
        int words = Dims / 4;
        var vectors = _accelerator.Allocate1D<int>((long)count * words);
        vectors.MemSetToZero();
        var scales = _accelerator.Allocate1D<float>(count);
        scales.MemSetToZero();
        var filter = _accelerator.Allocate1D<uint>((count + 31) / 32);
        if (Count > 0)
        {
            ArrayView<int> oldV = _vectors.View, newV = vectors.View;
            ArrayView<float> oldS = _scales.View, newS = scales.View;
            oldV.SubView(0, (long)Count * words).CopyTo(newV.SubView(0, (long)Count * words));
            oldS.SubView(0, Count).CopyTo(newS.SubView(0, Count));
        }
        _accelerator.Synchronize();
        _vectors.Dispose();
        _scales.Dispose();
        _filter.Dispose();
        _vectors = vectors;
        _scales = scales;
        _filter = filter;
        Count = count;
    }

    /// <summary>Overwrites vector <paramref name="row"/> (<c>[Dims]</c> int8) and its scale: one small upload.</summary>
    public void WriteRow(int row, ReadOnlySpan<sbyte> values, float scale)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Count);
        if (values.Length != Dims) throw new ArgumentException($"row has {values.Length} values, not {Dims}", nameof(values));
        int words = Dims / 4;
        ArrayView<int> v = _vectors.View;
        v.SubView((long)row * words, words).CopyFromCPU(System.Runtime.InteropServices.MemoryMarshal.Cast<sbyte, int>(values));
        ArrayView<float> s = _scales.View;
        s.SubView(row, 1).CopyFromCPU([scale]);
    }

    /// <summary>Downloads rows <c>[start, start + count)</c>: <paramref name="values"/> <c>[count, Dims]</c> int8, <paramref name="scales"/> <c>[count]</c>.</summary>
    public void ReadRows(int start, int count, Span<sbyte> values, Span<float> scales)
    {
        if (start < 0 || count < 0 || start + count > Count) throw new ArgumentOutOfRangeException(nameof(count));
        if (count == 0) return;
        int words = Dims / 4;
        ArrayView<int> v = _vectors.View;
        ArrayView<float> s = _scales.View;
        v.SubView((long)start * words, (long)count * words).CopyToCPU(System.Runtime.InteropServices.MemoryMarshal.Cast<sbyte, int>(values[..(count * Dims)]));
        s.SubView(start, count).CopyToCPU(scales[..count]);
    }

    /// <summary>Values per vector.</summary>
    public int Dims { get; }

    /// <summary>
    /// Benchmarks: <see cref="Search"/> uploads the queries, runs only the similarity scan and waits for it, writing no
    /// results, so the scan's share of a query can be timed apart from the top-k selection and the read-back.
    /// </summary>
    public bool ScanOnly { get; set; }

    /// <summary>Kernels launched by the last <see cref="Search"/>.</summary>
    public int LastLaunches { get; private set; }

    /// <summary>
    /// Use the wide scan (<see cref="SimilarityKernel.KernelWide"/>: int16 query, 16-byte loads, dp2a) where the
    /// dimension allows it (<see cref="WideScanApplies"/>). Default: on, unless <c>ENGINE_TOPK_WIDE_SCAN=0</c>.
    /// </summary>
    public bool WideScan { get; set; }

    /// <summary>
    /// After a wide scan, select with <see cref="TopKSelectKernel.KernelTiles"/> (one launch) rather than the tree
    /// passes. Default: on, unless <c>ENGINE_TOPK_TILE_SELECT=0</c>. Ignored with the previous scan.
    /// </summary>
    public bool TileSelect { get; set; }

    /// <summary>True when the dimension fits the wide scan: a multiple of 16, at most <see cref="SimilarityKernel.MaxWideDims"/>.</summary>
    public bool WideScanApplies => Dims % 16 == 0 && Dims <= SimilarityKernel.MaxWideDims;

    /// <summary>True when the last <see cref="Search"/> ran the tile selection and it overflowed into the tree passes.</summary>
    public bool LastSelectFellBack { get; private set; }

    /// <summary>
    /// Top <paramref name="k"/> vectors for each of the <c>queries.Length / Dims</c> queries (<c>[batch, dims]</c> f32).
    /// <paramref name="filter"/>, when given, is a bitmap of <c>ceil(Count/32)</c> words: bit v set = vector v allowed.
    /// Results go to <paramref name="ids"/> and <paramref name="scores"/>, <c>[batch, k]</c>, best first;
    /// where fewer than k vectors are allowed the rest have id −1 and score −∞. With the wide scan a score is
    /// <see cref="SimilarityKernel.WideScore"/> of the int16-quantized query (within <see cref="KernelTolerances.WideScore"/>
    /// of the f32 product); the selection is exact for the scores computed.
    /// </summary>
    /// <param name="rowCount">Scan only the first rowCount vectors; −1 (default) scans all <see cref="Count"/>.</param>
    public void Search(ReadOnlySpan<float> queries, int k, ReadOnlySpan<uint> filter, Span<int> ids, Span<float> scores, int rowCount = -1)
    {
        if (rowCount == -1) rowCount = Count;
        if (rowCount < 0 || rowCount > Count) throw new ArgumentOutOfRangeException(nameof(rowCount), $"row count {rowCount} is outside 0..{Count}");
        if (queries.Length == 0 || queries.Length % Dims != 0) throw new ArgumentException($"queries: {queries.Length} floats are not a batch of {Dims}-vectors", nameof(queries));
        int batch = queries.Length / Dims;
        if (k <= 0 || k > TopKSelectKernel.Chunk / 2) throw new ArgumentOutOfRangeException(nameof(k), $"k = {k} must be in 1..{TopKSelectKernel.Chunk / 2}");
        if (ids.Length < batch * k || scores.Length < batch * k) throw new ArgumentException($"results need room for {batch} × {k}");
        bool useFilter = !filter.IsEmpty;
        if (useFilter && filter.Length < (rowCount + 31) / 32) throw new ArgumentException($"filter has {filter.Length} words, {(rowCount + 31) / 32} needed", nameof(filter));
        if (rowCount == 0) { ids[..(batch * k)].Fill(-1); scores[..(batch * k)].Fill(float.NegativeInfinity); return; }

        int launches = 0;
        LastSelectFellBack = false;
        if (useFilter) { ArrayView<uint> f = _filter.View; f.SubView(0, (rowCount + 31) / 32).CopyFromCPU(filter[..((rowCount + 31) / 32)]); }

        int group = _device.GroupSize;
        ArrayView<float> inScores;
        if (WideScan && WideScanApplies)
        {
            int tileRows = TileRowsFor(rowCount);
            int tiles = (rowCount + tileRows - 1) / tileRows;
            int qInts = Dims / 2;
            // One upload: [batch, dims/2] int16 pairs, then [batch] f32 scales as bits.
            var host = Staging(ref _hostQ, batch * (qInts + 1));
            if (_hostShort.Length < Dims) _hostShort = new short[Dims];
            for (int b = 0; b < batch; b++)
            {
                float qs = SimilarityKernel.QuantizeQuery(queries.Slice(b * Dims, Dims), _hostShort);
                System.Runtime.InteropServices.MemoryMarshal.Cast<short, int>(_hostShort.AsSpan(0, Dims)).CopyTo(host.Slice(b * qInts, qInts));
                host[batch * qInts + b] = BitConverter.SingleToInt32Bits(qs);
            }
            ArrayView<int> qAll = Grow(ref _queriesQ, batch * (qInts + 1));
            qAll.CopyFromCPU(host);
            inScores = Grow(ref _scoresA, (long)batch * rowCount);
            var tileMax = Grow(ref _tileMax, (long)batch * tiles);
            _wide(new KernelConfig(new Index2D(tiles, batch), new Index2D(group, 1)),
                ((ArrayView<int>)_vectors.View).Cast<Int8x16>(), _scales.View, _filter.View, qAll.SubView(0, batch * qInts), qAll.SubView(batch * qInts, batch).Cast<float>(),
                inScores, tileMax, new WideSimilarityParams { Count = rowCount, Words = Dims / 4, UseFilter = useFilter ? 1 : 0, TileRows = tileRows, Tiles = tiles });
            launches++;
            if (ScanOnly)
            {
                _accelerator.Synchronize();
                LastLaunches = launches;
                return;
            }
            if (TileSelect)
            {
                int bk = batch * k;
                ArrayView<int> results = Grow(ref _results, 2 * bk + batch);
                _tileSelect(new KernelConfig(new Index2D(1, batch), new Index2D(_selectGroup, 1)), inScores, tileMax,
                    results.SubView(bk, bk).Cast<float>(), results.SubView(0, bk), results.SubView(2 * bk, batch),
                    new TileSelectParams { Count = rowCount, K = k, TileRows = tileRows, TileShift = System.Numerics.BitOperations.Log2((uint)tileRows), Tiles = tiles });
                launches++;
                _accelerator.Synchronize();
                var back = Staging(ref _hostResults, 2 * bk + batch);
                results.CopyToCPU(back);
                bool overflow = false;
                for (int b = 0; b < batch; b++) overflow |= back[2 * bk + b] < 0;
                if (!overflow)
                {
                    back[..bk].CopyTo(ids);
                    System.Runtime.InteropServices.MemoryMarshal.Cast<int, float>(back.Slice(bk, bk)).CopyTo(scores);
                    LastLaunches = launches;
                    return;
                }
                LastSelectFellBack = true; // many equal scores: the tree passes below finish the search
            }
        }
        else
        {
            ArrayView<float> q = Grow(ref _queries, queries.Length);
            q.CopyFromCPU(queries);
            int warps = group / _accelerator.WarpSize;
            inScores = Grow(ref _scoresA, (long)batch * rowCount);
            _similarity(new KernelConfig(new Index2D((rowCount + warps - 1) / warps, batch), new Index2D(group, 1)),
                _vectors.View, _scales.View, _filter.View, q, inScores, new SimilarityParams { Count = rowCount, Dims = Dims, UseFilter = useFilter ? 1 : 0 });
            launches++;
            if (ScanOnly)
            {
                _accelerator.Synchronize();
                LastLaunches = launches;
                return;
            }
        }

        // Tree passes: each chunk of 2048 candidates keeps its best k.
        int count = rowCount;
        ArrayView<int> inIds = _dummyIds.View;
        bool implicitIds = true;
        bool toB = true;
        while (true)
        {
            int chunks = (count + TopKSelectKernel.Chunk - 1) / TopKSelectKernel.Chunk;
            int outStride = chunks * k;
            var outScores = toB ? Grow(ref _scoresB, (long)batch * outStride) : Grow(ref _scoresA, (long)batch * outStride);
            var outIds = toB ? Grow(ref _idsB, (long)batch * outStride) : Grow(ref _idsA, (long)batch * outStride);
            _select(new KernelConfig(new Index2D(chunks, batch), new Index2D(group, 1)), inScores, inIds, outScores, outIds,
                new TopKParams { Count = count, K = k, ImplicitIds = implicitIds ? 1 : 0, OutStride = outStride });
            launches++;
            inScores = outScores;
            inIds = outIds;
            implicitIds = false;
            count = outStride;
            toB = !toB;
            if (chunks == 1) break;
        }
        _accelerator.Synchronize();
        inIds.SubView(0, (long)batch * k).CopyToCPU(ids[..(batch * k)]);
        inScores.SubView(0, (long)batch * k).CopyToCPU(scores[..(batch * k)]);
        LastLaunches = launches;
    }

    /// <summary>
    /// Threads of the tile-selection group on CUDA: 512 leaves room for up to 128 registers a thread, and the kernel is
    /// compiled with that launch bound (<see cref="SelectSpecialization"/>), so ptxas holds it there.
    /// </summary>
    internal const int SelectGroupSize = 512;

    private readonly int _selectGroup;

    /// <summary>Threads per group of the tile selection on this device (<see cref="SelectGroupSize"/> on CUDA-shaped devices).</summary>
    internal int SelectGroup => _selectGroup;

    /// <summary>The tile selection's group size on <paramref name="accelerator"/>: <see cref="SelectGroupSize"/>, or the largest multiple of the warp below its limit.</summary>
    internal static int SelectGroupFor(Accelerator accelerator)
    {
        int group = Math.Min(SelectGroupSize, accelerator.MaxNumThreadsPerGroup);
        return group - group % accelerator.WarpSize;
    }

    /// <summary>The tile selection's launch bound for groups of <paramref name="group"/> threads (PTX <c>.maxntid</c>).</summary>
    internal static KernelSpecialization SelectSpecialization(int group) => new(group, null);

    /// <summary>Vectors per scan tile: a power of two, at least <see cref="MinTileRows"/>, so that at most <see cref="TopKSelectKernel.MaxTiles"/> tiles cover the scan.</summary>
    public static int TileRowsFor(int rowCount)
    {
        int perTile = (int)Math.Min(1 << 30, ((long)rowCount + TopKSelectKernel.MaxTiles - 1) / TopKSelectKernel.MaxTiles);
        return (int)Math.Max(MinTileRows, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, perTile)));
    }

    private static Span<int> Staging(ref int[] array, int length)
    {
        if (array.Length < length) array = new int[length];
        return array.AsSpan(0, length);
    }

    private ArrayView<T> Grow<T>(ref MemoryBuffer1D<T, Stride1D.Dense>? buffer, long length) where T : unmanaged
    {
        if (buffer is null || buffer.Length < length)
        {
            buffer?.Dispose();
            buffer = _accelerator.Allocate1D<T>(Math.Max(1, length));
        }
        return buffer.View.SubView(0, length);
    }

    public void Dispose()
    {
        _vectors.Dispose();
        _scales.Dispose();
        _filter.Dispose();
        _dummyIds.Dispose();
        _queries?.Dispose();
        _scoresA?.Dispose();
        _scoresB?.Dispose();
        _idsA?.Dispose();
        _idsB?.Dispose();
        _queriesQ?.Dispose();
        _tileMax?.Dispose();
        _results?.Dispose();
    }
}
