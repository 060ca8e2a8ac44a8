using Engine.Runtime.Encoding;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Engine.Parity.Tests.MiniLm;

/// <summary>
/// all-MiniLM-L6-v2 as ONNX Runtime runs the package's model.onnx: our token ids in, <c>last_hidden_state</c>
/// out, then sentence-transformers' pooling (mean over the attention mask, L2 normalize) in double.
/// </summary>
internal sealed class OnnxMiniLmOracle : IDisposable
{
    private readonly InferenceSession _session;

    public OnnxMiniLmOracle(byte[] onnx, int threads = 1)
    {
        var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        _session = new InferenceSession(onnx, options);
    }

    /// <summary>Pooled, normalized embedding <c>[384]</c> of one token sequence.</summary>
    public float[] Embed(IReadOnlyList<int> ids)
    {
        int n = ids.Count;
        var input = new DenseTensor<long>([1, n]);
        var mask = new DenseTensor<long>([1, n]);
        var types = new DenseTensor<long>([1, n]);
        for (int i = 0; i < n; i++)
        {
            input[0, i] = ids[i];
            mask[0, i] = 1;
        }
        using var results = _session.Run(
        [
            NamedOnnxValue.CreateFromTensor("input_ids", input),
            NamedOnnxValue.CreateFromTensor("attention_mask", mask),
            NamedOnnxValue.CreateFromTensor("token_type_ids", types),
        ]);
        var hidden = results.First(r => r.Name == "last_hidden_state").AsTensor<float>(); // [1, n, dim]
        int dim = hidden.Dimensions[2];
        var sum = new double[dim];
        for (int t = 0; t < n; t++)
            for (int i = 0; i < dim; i++) sum[i] += hidden[0, t, i];
        double norm = 0;
        for (int i = 0; i < dim; i++)
        {
            sum[i] /= n;
            norm += sum[i] * sum[i];
        }
        norm = Math.Max(Math.Sqrt(norm), 1e-12);
        return sum.Select(v => (float)(v / norm)).ToArray();
    }

    public void Dispose() => _session.Dispose();
}

/// <summary>
/// Shared by the MiniLM parity tests: the package's ONNX bytes and vocabulary, ONNX Runtime, and encoders on the
/// CPU backend in F32 and Q8_0 whose converted weights go to a temporary cache directory (deleted afterwards).
/// </summary>
public sealed class MiniLmFixture : IDisposable
{
    public MiniLmFixture()
    {
        string assembly = MiniLmPackage.LocateAssembly();
        Onnx = MiniLmPackage.ReadModel(assembly);
        Vocabulary = MiniLmPackage.ReadVocabulary(assembly);
        CacheDirectory = Path.Combine(Path.GetTempPath(), "engine-minilm-tests-" + Guid.NewGuid().ToString("N"));
        Oracle = new OnnxMiniLmOracle(Onnx);
        Cpu = new Cpu.CpuBackend();
        F32 = MiniLmEncoder.Create(Cpu, Onnx, Vocabulary, EncoderPrecision.F32, CacheDirectory);
        Q8 = MiniLmEncoder.Create(Cpu, Onnx, Vocabulary, EncoderPrecision.Q8_0, CacheDirectory);
    }

    public byte[] Onnx { get; }
    public byte[] Vocabulary { get; }
    public string CacheDirectory { get; }
    internal OnnxMiniLmOracle Oracle { get; }
    public Engine.Core.Backend.IComputeBackend Cpu { get; }
    public MiniLmEncoder F32 { get; }
    public MiniLmEncoder Q8 { get; }

    public void Dispose()
    {
        F32.Dispose();
        Q8.Dispose();
        Cpu.Dispose();
        Oracle.Dispose();
        try { Directory.Delete(CacheDirectory, recursive: true); } catch (IOException) { }
    }
}
