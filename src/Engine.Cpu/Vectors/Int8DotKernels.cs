using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu.Vectors;

/// <summary>Which family of dot-product kernels <see cref="CpuVectorScanner"/> runs.</summary>
public enum VectorKernelPath
{
    /// <summary>The best the machine offers: <see cref="Avx512"/>, else <see cref="Avx2"/>, else <see cref="Scalar"/>.</summary>
    Auto = 0,

    /// <summary>AVX-512BW: 32 int8 widened to int16 per instruction, <c>vpmaddwd</c> against the int16 query.</summary>
    Avx512 = 1,

    /// <summary>AVX2: the same with 16 values per instruction.</summary>
    Avx2 = 2,

    /// <summary>Plain loops over the same int16 query (bit-identical integer sums).</summary>
    Scalar = 3,
}

/// <summary>
/// Integer dot products of one int8 row (<c>[stride]</c>, zero-padded to a multiple of
/// <see cref="StrideMultiple"/>) with one to four int16 queries (<c>[stride]</c> each). Rows are widened to
/// int16 once per 32 values and multiplied pairwise into int32 lanes (<c>vpmaddwd</c>); the widened row is
/// shared by the queries of a group so a batch reads each row once. Integer sums are exact, so every path
/// returns the same numbers. .NET 10 exposes no AVX-512 VNNI class (only the VEX <c>AvxVnni</c>, which Zen 4
/// lacks), and <c>vpmaddubsw</c> would need a 7-bit query to avoid saturating; the int16 query keeps the query
/// side almost exact (error 2^-16 of its largest value) at no cost in a bandwidth-bound scan.
/// </summary>
internal static unsafe class Int8DotKernels
{
    /// <summary>Row and query lengths are padded to this many values (one 256-bit load of int8).</summary>
    public const int StrideMultiple = 32;

    /// <summary>Resolves <see cref="VectorKernelPath.Auto"/>; throws where a forced path is not supported.</summary>
    public static VectorKernelPath Resolve(VectorKernelPath path) => path switch
    {
        VectorKernelPath.Auto => Avx512BW.IsSupported ? VectorKernelPath.Avx512 : Avx2.IsSupported ? VectorKernelPath.Avx2 : VectorKernelPath.Scalar,
        VectorKernelPath.Avx512 when !Avx512BW.IsSupported => throw new NotSupportedException("AVX-512BW is not supported on this machine"),
        VectorKernelPath.Avx2 when !Avx2.IsSupported => throw new NotSupportedException("AVX2 is not supported on this machine"),
        _ => path,
    };

    /// <summary>Largest block of rows <see cref="DotRows"/> fills (one 64-bit mask word).</summary>
    public const int BlockRows = 64;

    /// <summary>
    /// Sums of row · q_i for <paramref name="n"/> (1..4) queries at <paramref name="q"/>, <paramref name="qStride"/> apart,
    /// and one row at <paramref name="row"/>: <c>sums[i * sumStride]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot(VectorKernelPath path, sbyte* row, short* q, int qStride, int n, int stride, int* sums, int sumStride)
    {
        switch (path)
        {
            case VectorKernelPath.Avx512:
                if (n == 1) sums[0] = Dot1Avx512(row, q, stride);
                else Dot4Avx512(row, q, qStride, n, stride, sums, sumStride);
                break;
            case VectorKernelPath.Avx2:
                for (int i = 0; i < n; i++) sums[i * sumStride] = Dot1Avx2(row, q + i * qStride, stride);
                break;
            default:
                for (int i = 0; i < n; i++) sums[i * sumStride] = Dot1Scalar(row, q + i * qStride, stride);
                break;
        }
    }

    /// <summary>
    /// Sums for <paramref name="count"/> (≤ <see cref="BlockRows"/>) consecutive rows starting at <paramref name="rows"/>
    /// (<paramref name="stride"/> bytes apart) against <paramref name="n"/> queries: <c>sums[i * BlockRows + j]</c> for query i, row j.
    /// One tight loop with no branches per row: the dense case of a scan (every row of a mask word allowed).
    /// </summary>
    // Full optimization from the first call: the tiered, PGO-instrumented version of this loop measured twice as slow.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotRows(VectorKernelPath path, sbyte* rows, int count, short* q, int qStride, int n, int stride, int* sums)
    {
        if (path == VectorKernelPath.Avx512)
        {
            // Queries in pairs over row pairs (no multiply-add spent on a missing query); an odd query four rows at a time.
            int pairs = n >> 1;
            for (int i = 0; i < pairs; i++)
            {
                short* qi = q + 2 * i * (long)qStride;
                int* si = sums + 2 * i * BlockRows;
                int j = 0;
                for (; j + 2 <= count; j += 2) Dot2RowsBy2Avx512(rows + (long)j * stride, stride, qi, qStride, si + j);
                if (j < count) Dot4Avx512(rows + (long)j * stride, qi, qStride, 2, stride, si + j, BlockRows);
            }
            if ((n & 1) != 0)
            {
                short* qi = q + (n - 1) * (long)qStride;
                int* si = sums + (n - 1) * BlockRows;
                int j = 0;
                for (; j + 4 <= count; j += 4) Dot4RowsAvx512(rows + (long)j * stride, stride, qi, si + j);
                for (; j < count; j++) si[j] = Dot1Avx512(rows + (long)j * stride, qi, stride);
            }
            return;
        }
        for (int j = 0; j < count; j++) Dot(path, rows + (long)j * stride, q, qStride, n, stride, sums + j, BlockRows);
    }

    public static int Dot1Scalar(sbyte* row, short* q, int stride)
    {
        int sum = 0;
        for (int j = 0; j < stride; j++) sum += row[j] * q[j];
        return sum;
    }

    public static int Dot1Avx2(sbyte* row, short* q, int stride)
    {
        Vector256<int> a0 = Vector256<int>.Zero, a1 = Vector256<int>.Zero;
        for (int j = 0; j < stride; j += 32)
        {
            a0 = Avx2.Add(a0, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(row + j), Avx.LoadVector256(q + j)));
            a1 = Avx2.Add(a1, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(row + j + 16), Avx.LoadVector256(q + j + 16)));
        }
        return Vector256.Sum(Avx2.Add(a0, a1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Dot1Avx512(sbyte* row, short* q, int stride)
    {
        // Four independent accumulators over 128 values per step: the widen (vpmovsxbw) and multiply-add of
        // different steps overlap instead of queuing behind one add chain.
        Vector512<int> a0 = Vector512<int>.Zero, a1 = Vector512<int>.Zero, a2 = Vector512<int>.Zero, a3 = Vector512<int>.Zero;
        int j = 0;
        for (; j + 128 <= stride; j += 128)
        {
            a0 = Avx512F.Add(a0, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(row + j)), Avx512F.LoadVector512(q + j)));
            a1 = Avx512F.Add(a1, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(row + j + 32)), Avx512F.LoadVector512(q + j + 32)));
            a2 = Avx512F.Add(a2, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(row + j + 64)), Avx512F.LoadVector512(q + j + 64)));
            a3 = Avx512F.Add(a3, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(row + j + 96)), Avx512F.LoadVector512(q + j + 96)));
        }
        for (; j < stride; j += 32)
            a0 = Avx512F.Add(a0, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(row + j)), Avx512F.LoadVector512(q + j)));
        return Vector512.Sum(Avx512F.Add(Avx512F.Add(a0, a1), Avx512F.Add(a2, a3)));
    }

    /// <summary>
    /// Four consecutive rows (<paramref name="stride"/> bytes apart) against one query: <c>sums[0..3]</c>. Each 32 query values
    /// are loaded once for the four rows, and the four horizontal sums are done together (<see cref="Sum4"/>) instead of one
    /// full reduction per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot4RowsAvx512(sbyte* rows, int stride, short* q, int* sums)
    {
        sbyte* r0 = rows, r1 = rows + stride, r2 = rows + 2 * (long)stride, r3 = rows + 3 * (long)stride;
        Vector512<int> a0 = Vector512<int>.Zero, a1 = Vector512<int>.Zero, a2 = Vector512<int>.Zero, a3 = Vector512<int>.Zero;
        for (int j = 0; j < stride; j += 32)
        {
            var qv = Avx512F.LoadVector512(q + j);
            a0 = Avx512F.Add(a0, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(r0 + j)), qv));
            a1 = Avx512F.Add(a1, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(r1 + j)), qv));
            a2 = Avx512F.Add(a2, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(r2 + j)), qv));
            a3 = Avx512F.Add(a3, Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(r3 + j)), qv));
        }
        Sum4(a0, a1, a2, a3).Store(sums);
    }

    /// <summary>
    /// Two consecutive rows against two queries (<paramref name="qStride"/> apart): <c>sums[0]</c>, <c>sums[1]</c> for the first
    /// query and rows 0, 1, <c>sums[BlockRows]</c>, <c>sums[BlockRows + 1]</c> for the second. Per 32 values two widened rows,
    /// two query loads and four multiply-adds, each used twice.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot2RowsBy2Avx512(sbyte* rows, int stride, short* q, int qStride, int* sums)
    {
        sbyte* r0 = rows, r1 = rows + stride;
        short* q0 = q, q1 = q + qStride;
        Vector512<int> a00 = Vector512<int>.Zero, a01 = Vector512<int>.Zero, a10 = Vector512<int>.Zero, a11 = Vector512<int>.Zero;
        for (int j = 0; j < stride; j += 32)
        {
            var w0 = Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(r0 + j));
            var w1 = Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(r1 + j));
            var x0 = Avx512F.LoadVector512(q0 + j);
            var x1 = Avx512F.LoadVector512(q1 + j);
            a00 = Avx512F.Add(a00, Avx512BW.MultiplyAddAdjacent(w0, x0));
            a01 = Avx512F.Add(a01, Avx512BW.MultiplyAddAdjacent(w1, x0));
            a10 = Avx512F.Add(a10, Avx512BW.MultiplyAddAdjacent(w0, x1));
            a11 = Avx512F.Add(a11, Avx512BW.MultiplyAddAdjacent(w1, x1));
        }
        var t = Sum4(a00, a01, a10, a11); // [q0·r0, q0·r1, q1·r0, q1·r1]
        sums[0] = t.GetElement(0);
        sums[1] = t.GetElement(1);
        sums[BlockRows] = t.GetElement(2);
        sums[BlockRows + 1] = t.GetElement(3);
    }

    /// <summary>
    /// [Σa0, Σa1, Σa2, Σa3] of four int32 accumulators: halves added (512 → 256), then three pairwise horizontal adds and one
    /// 128-bit fold (13 instructions instead of four separate reductions).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Sum4(Vector512<int> a0, Vector512<int> a1, Vector512<int> a2, Vector512<int> a3)
    {
        var h0 = Avx2.Add(a0.GetLower(), a0.GetUpper());
        var h1 = Avx2.Add(a1.GetLower(), a1.GetUpper());
        var h2 = Avx2.Add(a2.GetLower(), a2.GetUpper());
        var h3 = Avx2.Add(a3.GetLower(), a3.GetUpper());
        var t = Avx2.HorizontalAdd(Avx2.HorizontalAdd(h0, h1), Avx2.HorizontalAdd(h2, h3));
        return Sse2.Add(t.GetLower(), t.GetUpper());
    }

    /// <summary>One row against up to four queries: the row is widened once per 32 values for all of them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot4Avx512(sbyte* row, short* q, int qStride, int n, int stride, int* sums, int sumStride)
    {
        short* q0 = q, q1 = n > 1 ? q + qStride : q, q2 = n > 2 ? q + 2 * qStride : q, q3 = n > 3 ? q + 3 * qStride : q;
        Vector512<int> a0 = Vector512<int>.Zero, a1 = Vector512<int>.Zero, a2 = Vector512<int>.Zero, a3 = Vector512<int>.Zero;
        for (int j = 0; j < stride; j += 32)
        {
            var r = Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(row + j));
            a0 = Avx512F.Add(a0, Avx512BW.MultiplyAddAdjacent(r, Avx512F.LoadVector512(q0 + j)));
            a1 = Avx512F.Add(a1, Avx512BW.MultiplyAddAdjacent(r, Avx512F.LoadVector512(q1 + j)));
            a2 = Avx512F.Add(a2, Avx512BW.MultiplyAddAdjacent(r, Avx512F.LoadVector512(q2 + j)));
            a3 = Avx512F.Add(a3, Avx512BW.MultiplyAddAdjacent(r, Avx512F.LoadVector512(q3 + j)));
        }
        var total = Sum4(a0, a1, a2, a3); // [Σa0, Σa1, Σa2, Σa3]
        sums[0] = total.GetElement(0);
        if (n > 1) sums[sumStride] = total.GetElement(1);
        if (n > 2) sums[2 * sumStride] = total.GetElement(2);
        if (n > 3) sums[3 * sumStride] = total.GetElement(3);
    }
}
