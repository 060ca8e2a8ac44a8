using Engine.Runtime.Generation;
using Engine.Runtime.Llama;
using Engine.Runtime.Sampling;
using Engine.Runtime.Scheduling;
using Engine.Runtime.Tests.Llama;
using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Scheduling;

/// <summary>Continuous batching on stories260K (Q8_0): batched streams must write what one stream alone writes.</summary>
public sealed class GenerationSchedulerTests
{
    private const string File = "stories260K.q8_0.gguf";
    private static readonly string[] Prompts = ["Once upon a time", "The little dog", "Lily wanted to play with her friend and", "One day"];

    private static async Task<string> ReadAllAsync(GenerationStream stream)
    {
        var text = new System.Text.StringBuilder();
        await foreach (string piece in stream.Pieces.ReadAllAsync()) text.Append(piece);
        return text.ToString();
    }

    [RequiresSharedTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public async Task Concurrent_greedy_streams_with_chunked_prefill_equal_single_stream_generation(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        using var model = LlamaModel.Load(SharedFixtures.PathOf("models", File), backend);
        var tokenizer = GgufTokenizer.Create(model.File.Metadata);
        var options = new GenerationOptions { MaxTokens = 40, Sampling = SamplingOptions.Greedy };

        string[] expected;
        using (var decoder = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = 128 }))
        {
            var generator = new Generator(decoder, tokenizer);
            expected = Prompts.Select(p => generator.Generate(p, options).Text).ToArray();
        }

        // Prefill chunks of 3 rows and at most 8 rows per step: prompts are split over several steps
        // while other streams already decode.
        using var scheduler = new GenerationScheduler(model, tokenizer, new SchedulerOptions { MaxStreams = 4, MaxQueue = 4, ContextLength = 128, PrefillChunk = 3, MaxBatchRows = 8 });
        var streams = Prompts.Select(p => scheduler.Submit(p, options)).ToArray();
        string[] texts = await Task.WhenAll(streams.Select(ReadAllAsync));
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(expected[i], texts[i]);
            var result = await streams[i].Completion;
            Assert.Equal(expected[i], result.Text);
            Assert.Equal(40, result.TokenCount);
        }
        Assert.True(scheduler.Rows > scheduler.Steps, "steps should batch several rows");
    }

    [RequiresSharedFact]
    public async Task Past_streams_and_queue_submissions_are_refused_and_cancelled_streams_free_their_slot()
    {
        using var backend = TestBackends.Create("cpu");
        using var model = LlamaModel.Load(SharedFixtures.PathOf("models", File), backend);
        var tokenizer = GgufTokenizer.Create(model.File.Metadata);
        using var scheduler = new GenerationScheduler(model, tokenizer, new SchedulerOptions { MaxStreams = 1, MaxQueue = 1, ContextLength = 256, MaxBatchRows = 4 });
        var endless = new GenerationOptions { MaxTokens = -1, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false };
        using var cancelFirst = new CancellationTokenSource();
        var first = scheduler.Submit("Once upon a time", endless, cancelFirst.Token);
        var second = scheduler.Submit("One day", new GenerationOptions { MaxTokens = 5, Sampling = SamplingOptions.Greedy });
        var refused = Assert.Throws<SchedulerOverloadedException>(() => scheduler.Submit("x", endless));
        Assert.True(refused.RetryAfter > TimeSpan.Zero);

        await first.Pieces.ReadAsync(); // it is running
        cancelFirst.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => { await foreach (var _ in first.Pieces.ReadAllAsync()) { } });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.Completion);
        // The queued stream gets the slot and finishes.
        Assert.Equal(5, (await second.Completion.WaitAsync(TimeSpan.FromSeconds(30))).TokenCount);
        Assert.Equal(1, scheduler.Rejected);
    }
}
