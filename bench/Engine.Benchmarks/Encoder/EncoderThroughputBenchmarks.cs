using BenchmarkDotNet.Attributes;
using Engine.Cpu;
using Engine.Runtime.Encoding;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Engine.Benchmarks.Encoder;

/// <summary>
/// all-MiniLM-L6-v2 embedding throughput: our encoder on the CPU backend (F32 and Q8_0) against ONNX Runtime
/// on the same model.onnx, in one run, at the same thread count (ORT's IntraOpNumThreads = our worker count).
/// One operation = one text of a batch of <see cref="BatchSize"/> product texts, so texts/s = 1 / mean. Both sides
/// tokenize inside the measured call with the same tokenizer; ORT gets the batch padded to its longest text with an
/// attention mask (its usual use) and pooling is done as sentence-transformers does.
/// Run: <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*EncoderThroughput*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
public class EncoderThroughputBenchmarks : IDisposable
{
    private const int BatchSize = 32;

    private static readonly string[] Corpus =
    [
        "Men's trail running shoes, waterproof Gore-Tex upper, size 44",
        "Summer floral maxi dress in lightweight cotton, perfect for beach weddings and garden parties",
        "Stainless steel insulated water bottle 750ml keeps drinks cold for 24 hours",
        "Wireless noise-cancelling over-ear headphones with 30h battery life and fast charging",
        "Organic fair-trade coffee beans, dark roast, 1 kg bag",
        "Kids' building blocks set (500 pieces) with storage box",
        "Ergonomic office chair with lumbar support, breathable mesh back and adjustable armrests",
        "4K UHD smart TV 55 inch HDR10+ Dolby Vision",
        "summer dresses under $50",
        "Crème brûlée torch kit with refillable butane",
        "USB-C to HDMI adapter 4K@60Hz, aluminium housing",
        "Hand-knitted merino wool scarf, charcoal grey",
        "Yoga mat 6mm non-slip TPE eco-friendly with carrying strap",
        "cheap gaming laptop rtx 4060 16gb ram",
        "Vintage leather messenger bag for 15-inch laptops with padded compartment",
        "Bamboo cutting board set of 3 with juice groove",
    ];

    private IReadOnlyList<string> _texts = [];
    private float[] _output = [];
    private CpuBackend? _backend;
    private MiniLmEncoder? _encoder;
    private InferenceSession? _session;
    private BertTextTokenizer? _tokenizer;

    /// <summary>Our CPU workers and ORT's intra-op threads.</summary>
    [Params(1, 2)]
    public int Threads { get; set; } = 2;

    [GlobalSetup(Targets = [nameof(Engine_F32)])]
    public void SetupF32() => Setup(EncoderPrecision.F32);

    [GlobalSetup(Targets = [nameof(Engine_Q8_0)])]
    public void SetupQ8() => Setup(EncoderPrecision.Q8_0);

    /// <summary>Q8_0 on the int8 AVX2 2 × 4 batched kernel (the default before the dequantized f32 kernel): before and after in one run.</summary>
    [GlobalSetup(Targets = [nameof(Engine_Q8_0_Avx2)])]
    public void SetupQ8Avx2() => Setup(EncoderPrecision.Q8_0, Q8BatchKernel.Int8Avx2);

    [GlobalSetup(Targets = [nameof(OnnxRuntime_F32)])]
    public void SetupOnnx()
    {
        Setup(EncoderPrecision.F32); // for the tokenizer (same ids on both sides)
        byte[] onnx = MiniLmPackage.ReadModel(MiniLmPackage.LocateAssembly());
        _session = new InferenceSession(onnx, new SessionOptions
        {
            IntraOpNumThreads = Threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        });
    }

    private void Setup(EncoderPrecision precision, Q8BatchKernel q8Batch = Q8BatchKernel.Auto)
    {
        _texts = Enumerable.Range(0, BatchSize).Select(i => Corpus[i % Corpus.Length]).ToArray();
        _output = new float[BatchSize * 384];
        _backend = new CpuBackend(new CpuBackendOptions { Threads = Threads, Q8Batch = q8Batch });
        _encoder = MiniLmEncoder.CreateDefault(_backend, precision);
        _tokenizer = _encoder.Tokenizer;
    }

    [Benchmark(OperationsPerInvoke = BatchSize)]
    public void Engine_F32() => _encoder!.Embed(_texts, _output);

    [Benchmark(OperationsPerInvoke = BatchSize)]
    public void Engine_Q8_0() => _encoder!.Embed(_texts, _output);

    [Benchmark(OperationsPerInvoke = BatchSize)]
    public void Engine_Q8_0_Avx2() => _encoder!.Embed(_texts, _output);

    [Benchmark(OperationsPerInvoke = BatchSize, Baseline = true)]
    public void OnnxRuntime_F32()
    {
        var ids = _texts.Select(t => _tokenizer!.Encode(t)).ToArray();
        int batch = ids.Length, len = ids.Max(s => s.Count);
        var input = new DenseTensor<long>([batch, len]);
        var mask = new DenseTensor<long>([batch, len]);
        var types = new DenseTensor<long>([batch, len]);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < ids[b].Count; i++)
            {
                input[b, i] = ids[b][i];
                mask[b, i] = 1;
            }
        using var results = _session!.Run(
        [
            NamedOnnxValue.CreateFromTensor("input_ids", input),
            NamedOnnxValue.CreateFromTensor("attention_mask", mask),
            NamedOnnxValue.CreateFromTensor("token_type_ids", types),
        ]);
        var hidden = ((DenseTensor<float>)results.First(r => r.Name == "last_hidden_state").AsTensor<float>()).Buffer.Span; // [batch, len, 384]
        for (int b = 0; b < batch; b++)
        {
            var dst = _output.AsSpan(b * 384, 384);
            dst.Clear();
            for (int t = 0; t < ids[b].Count; t++)
            {
                var row = hidden.Slice((b * len + t) * 384, 384);
                for (int i = 0; i < 384; i++) dst[i] += row[i];
            }
            float norm = 0;
            for (int i = 0; i < 384; i++) norm += dst[i] * dst[i];
            float inv = 1f / MathF.Max(MathF.Sqrt(norm), 1e-12f);
            for (int i = 0; i < 384; i++) dst[i] *= inv; // the mean's 1/n cancels in the normalization
        }
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _encoder?.Dispose();
        _backend?.Dispose();
        _session?.Dispose();
        _encoder = null;
        _backend = null;
        _session = null;
        GC.SuppressFinalize(this);
    }
}
