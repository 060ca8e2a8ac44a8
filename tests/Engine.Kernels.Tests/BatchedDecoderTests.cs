using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu;
using Engine.Kernels.Testing;
using Engine.Runtime.Llama;
using Engine.Runtime.Scheduling;

namespace Engine.Kernels.Tests;

/// <summary>
/// Continuous batching on the ILGPU backend: the scheduler's <see cref="BatchedDecoder"/> over
/// <see cref="IlgpuBackend"/> against the same decoder over <see cref="CpuBackend"/>, on steps that mix
/// streams at different positions: prefills of several rows (positions uploaded for n &gt; 1), a prompt
/// prefilled in chunks without logits, decode rows (n = 1 segments inside a larger step), streams
/// arriving and finishing mid-run, and a step of a single row.
/// </summary>
[Collection("ilgpu")]
public class BatchedDecoderTests
{
    /// <summary>Head dimension 32: the attention kernel's fused Q8_0 output runs per segment (it does not at 16).</summary>
    private static readonly SyntheticModelConfig Shape = new()
    {
        Name = "batched decoder test",
        EmbeddingLength = 128, BlockCount = 2, HeadCount = 4, HeadCountKv = 2, FeedForwardLength = 256,
        VocabSize = 512, ContextLength = 64, Recipe = SyntheticWeightRecipe.TokenFocused,
    };

    /// <summary>A stream of the scripted run: its prompt, the step it arrives at, its prefill chunk and how many tokens it samples.</summary>
    private sealed record Plan(int[] Prompt, int ArrivesAt, int Chunk, int Tokens);

    private static Plan[] Plans()
    {
        var random = new Random(17);
        int[] Prompt(int n) => [1, .. Enumerable.Range(0, n - 1).Select(_ => random.Next(SyntheticModel.ReservedTokens, Shape.VocabSize))];
        return
        [
            new(Prompt(5), ArrivesAt: 0, Chunk: 8, Tokens: 6),    // one-step prefill, finishes first
            new(Prompt(3), ArrivesAt: 0, Chunk: 8, Tokens: 14),   // outlives the others: the last steps are n = 1
            new(Prompt(11), ArrivesAt: 1, Chunk: 4, Tokens: 8),   // three chunks, logits only on the last
        ];
    }

    [Theory]
    [InlineData("cpu")]
    public void Batched_decoder_greedy_ids_per_stream_on_ilgpu_equal_the_cpu_backend(string device)
    {
        string path = Path.Combine(Path.GetTempPath(), $"engine-batched-{Environment.ProcessId}-{device}.q8_0.gguf");
        try
        {
            SyntheticModel.Write(path, Shape, seed: 5, type: GgmlType.Q8_0, threads: 1);
            using var cpu = new CpuBackend(threads: 1);
            var (expectedIds, expectedLogits, cpuRows) = Run(path, cpu);
            var (actualIds, actualLogits, gpuRows) = Run(path, Devices.Get(device));

            Assert.Equal(cpuRows, gpuRows);
            Assert.Contains(1, gpuRows);           // the run had single-row steps
            Assert.Contains(gpuRows, n => n > 4);  // and steps of several segments with multi-row prefills
            for (int s = 0; s < expectedIds.Length; s++)
                Assert.True(expectedIds[s].SequenceEqual(actualIds[s]),
                    $"stream {s}: ilgpu [{string.Join(", ", actualIds[s])}] vs cpu [{string.Join(", ", expectedIds[s])}]");
            double err = HostTensors.NormalizedError(actualLogits.ToArray(), expectedLogits.ToArray());
            Assert.True(err <= KernelTolerances.Forward, $"logits of every step: normalized error {err:E3} > {KernelTolerances.Forward:E1}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Runs the scripted streams through a <see cref="BatchedDecoder"/> on <paramref name="backend"/> as the scheduler lays
    /// out a step (decode rows first, then prompt chunks), sampling greedily; returns each stream's ids, every logits row
    /// in order, and the rows of each step.
    /// </summary>
    private static (int[][] Ids, List<float> Logits, List<int> Rows) Run(string path, IComputeBackend backend)
    {
        var plans = Plans();
        using var model = LlamaModel.Load(path, backend);
        using var decoder = new BatchedDecoder(model, maxRows: 32, maxLogitRows: plans.Length, contextLength: Shape.ContextLength);
        var caches = plans.Select(_ => decoder.AllocateCache()).ToArray();
        var ids = plans.Select(_ => new List<int>()).ToArray();
        var prefilled = new int[plans.Length];
        var allLogits = new List<float>();
        var rowsPerStep = new List<int>();
        var tokens = new int[decoder.MaxRows];
        var segments = new List<BatchSegment>();
        var owners = new List<int>();
        var logits = new float[plans.Length * decoder.VocabSize];
        try
        {
            for (int step = 0; ids.Select((g, s) => g.Count < plans[s].Tokens).Any(b => b); step++)
            {
                segments.Clear();
                owners.Clear();
                int rows = 0;
                for (int s = 0; s < plans.Length; s++)   // decode rows: streams whose prompt is in the cache
                {
                    var p = plans[s];
                    if (prefilled[s] < p.Prompt.Length || ids[s].Count >= p.Tokens) continue;
                    tokens[rows] = ids[s][^1];
                    segments.Add(new BatchSegment(caches[s], p.Prompt.Length + ids[s].Count - 1, rows, 1, WantLogits: true));
                    owners.Add(s);
                    rows++;
                }
                for (int s = 0; s < plans.Length; s++)   // prompt chunks
                {
                    var p = plans[s];
                    if (step < p.ArrivesAt || prefilled[s] == p.Prompt.Length) continue;
                    int chunk = Math.Min(p.Chunk, p.Prompt.Length - prefilled[s]);
                    p.Prompt.AsSpan(prefilled[s], chunk).CopyTo(tokens.AsSpan(rows));
                    segments.Add(new BatchSegment(caches[s], prefilled[s], rows, chunk, WantLogits: prefilled[s] + chunk == p.Prompt.Length));
                    owners.Add(s);
                    prefilled[s] += chunk;
                    rows += chunk;
                }
                rowsPerStep.Add(rows);
                int m = decoder.Step(tokens.AsSpan(0, rows), segments.ToArray(), logits);
                allLogits.AddRange(logits.AsSpan(0, m * decoder.VocabSize).ToArray());
                int row = 0;
                for (int i = 0; i < segments.Count; i++)
                {
                    if (!segments[i].WantLogits) continue;
                    ids[owners[i]].Add(ArgMax(logits.AsSpan(row++ * decoder.VocabSize, decoder.VocabSize)));
                }
            }
        }
        finally
        {
            foreach (var c in caches) c.Dispose();
        }
        return (ids.Select(g => g.ToArray()).ToArray(), allLogits, rowsPerStep);
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
