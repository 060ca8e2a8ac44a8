using Engine.Server.Handlers;

namespace Engine.Server.Tests;

/// <summary>
/// <see cref="MicroBatcher{TItem, TResult}"/> recycles its queued items (each is the source of its caller's answer):
/// over many rounds every caller still gets its own answer, failures and cancellations reach the right callers, and a
/// warmed item costs no allocation (it was a queue entry, a completion source and its task, ~180 B).
/// </summary>
[Collection(AllocationCollection.Name)]
public class MicroBatcherRecyclingTests
{
    private static readonly Dictionary<int, BatchAnswer<int>[]> Answers = [];

    /// <summary>Answers item x with x * 10; an item of -1 fails alone. Answer arrays reused per batch size (the batcher reads them before the next batch).</summary>
    private static BatchAnswer<int>[] Process(IReadOnlyList<int> items)
    {
        BatchAnswer<int>[] answers;
        lock (Answers)
            if (!Answers.TryGetValue(items.Count, out answers!)) Answers[items.Count] = answers = new BatchAnswer<int>[items.Count];
        for (int i = 0; i < items.Count; i++)
            answers[i] = items[i] == -1 ? BatchAnswer<int>.Fail(new InvalidOperationException("bad item")) : items[i] * 10;
        return answers;
    }

    [Fact]
    public async Task Recycled_items_answer_their_own_callers_through_failures_and_cancellations()
    {
        await using var batcher = new MicroBatcher<int, int>(Process);
        for (int round = 0; round < 200; round++)
        {
            using var cts = new CancellationTokenSource();
            var answers = new Task<int>[16];
            for (int i = 0; i < answers.Length; i++)
                answers[i] = batcher.SubmitAsync(i == 5 ? -1 : round * 100 + i, i == 9 ? cts.Token : CancellationToken.None).AsTask();
            if (round % 3 == 0) cts.Cancel();
            for (int i = 0; i < answers.Length; i++)
            {
                if (i == 5) await Assert.ThrowsAsync<InvalidOperationException>(() => answers[i]);
                else if (i == 9 && round % 3 == 0)
                {
                    // Cancelled while queued (answered at once) or answered before the cancel: either is right.
                    try { Assert.Equal((round * 100 + i) * 10, await answers[i]); }
                    catch (OperationCanceledException e) { Assert.Equal(cts.Token, e.CancellationToken); }
                }
                else Assert.Equal((round * 100 + i) * 10, await answers[i]);
            }
        }
    }

    [Fact]
    public async Task A_warmed_item_allocates_nothing()
    {
        const int Window = 32, Rounds = 200;
        await using var batcher = new MicroBatcher<int, int>(Process);
        var pending = new ValueTask<int>[Window];
        using var cts = new CancellationTokenSource(); // a token that can cancel: items register on it

        async Task RoundAsync()
        {
            for (int i = 0; i < Window; i++) pending[i] = batcher.SubmitAsync(i, cts.Token);
            for (int i = 0; i < Window; i++)
                if (await pending[i] != i * 10) throw new InvalidOperationException("wrong answer");
        }

        for (int i = 0; i < 50; i++) await RoundAsync();
        long perItem = await AllocationCollection.LeastAllocatedPerOperationAsync(RoundAsync, Rounds, Window);
        Assert.True(perItem < 40, $"{perItem} B allocated per item");
    }
}
