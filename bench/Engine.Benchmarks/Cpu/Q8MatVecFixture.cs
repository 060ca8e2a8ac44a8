using System.Runtime.InteropServices;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Core.Tensors;
using Engine.Cpu;

namespace Engine.Benchmarks.Cpu;

/// <summary>Where the weights of a benchmarked product live between calls.</summary>
public enum Residency
{
    /// <summary>One matrix, called again and again: it stays in the caches (L2/L3) after the first call.</summary>
    Hot,

    /// <summary>Copies totalling <see cref="Q8MatVecFixture.ColdBytes"/> used in turn, so every call streams its weights from memory, as a decode step over a model larger than the last-level cache does.</summary>
    Cold,
}

/// <summary>
/// A Q8_0 matrix-vector product set up for a benchmark: shape "KxM" means M output rows of K inputs
/// (ggml's <c>[K, M]</c>, fastest first: "576x1536" is SmolLM2-135M's ffn_up, "1536x576" its ffn_down,
/// "2048x5632" TinyLlama-1.1B's ffn_up). Weights are random floats quantized with the reference quantizer
/// into native memory, as a mapped GGUF file would hold them.
/// </summary>
public sealed unsafe class Q8MatVecFixture : IDisposable
{
    /// <summary>Bytes of weights cycled through in the <see cref="Residency.Cold"/> case: eight times a 32 MiB L3.</summary>
    public const long ColdBytes = 256L << 20;

    private readonly byte* _data;
    private readonly MatMulTarget[][] _targets;
    private readonly DeviceBuffer _x;
    private int _next;

    public Q8MatVecFixture(string shape, int threads, CpuKernelPath path, Residency residency)
    {
        (Cols, Rows) = ParseShape(shape);
        WeightBytes = GgmlTypeInfo.RowBytes(GgmlType.Q8_0, Cols) * Rows;
        int copies = residency == Residency.Hot ? 1 : (int)((ColdBytes + WeightBytes - 1) / WeightBytes);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)(WeightBytes * copies), 64);

        var rng = new Random(42);
        var row = new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            for (int i = 0; i < Cols; i++) row[i] = (float)(rng.NextDouble() * 2 - 1);
            Q8_0.QuantizeRow(row, new Span<byte>(_data + r * (WeightBytes / Rows), (int)(WeightBytes / Rows)));
        }
        for (int c = 1; c < copies; c++) Buffer.MemoryCopy(_data, _data + c * WeightBytes, WeightBytes, WeightBytes);

        Backend = new CpuBackend(new CpuBackendOptions { Threads = threads, Path = path });
        _x = Backend.Allocate(Cols);
        var xs = new float[Cols];
        for (int i = 0; i < Cols; i++) xs[i] = (float)(rng.NextDouble() * 2 - 1);
        Backend.Write(_x, xs);
        _targets = new MatMulTarget[copies][];
        for (int c = 0; c < copies; c++)
        {
            var view = new TensorView($"w{c}", GgmlType.Q8_0, [Cols, Rows], _data + c * WeightBytes);
            _targets[c] = [new MatMulTarget(Backend.LoadWeight(view), Backend.Allocate(Rows))];
        }
    }

    public CpuBackend Backend { get; }
    public int Rows { get; }
    public int Cols { get; }

    /// <summary>Bytes of one weight matrix (34 per block of 32).</summary>
    public long WeightBytes { get; }

    /// <summary>One product <c>y [Rows] = W · x [Cols]</c>, on the next copy of the weights.</summary>
    public void Run()
    {
        Backend.MatMul(_x, 1, _targets[_next]);
        if (++_next == _targets.Length) _next = 0;
    }

    /// <summary>"KxM" → (K inputs, M outputs).</summary>
    public static (int Cols, int Rows) ParseShape(string shape)
    {
        var parts = shape.Split('x');
        return (int.Parse(parts[0]), int.Parse(parts[1]));
    }

    public void Dispose()
    {
        Backend.Dispose();
        NativeMemory.AlignedFree(_data);
    }
}
