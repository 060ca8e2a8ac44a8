using Engine.Client;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server.Tests;

public sealed class RecommendBatcherTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Requests_arriving_while_a_scan_runs_are_served_together_by_the_next_scan()
    {
        var ranking = new GatedBatchRanking();
        await using var batcher = new RecommendBatcher(ranking);

        // The first request starts a scan that holds until released; 20 more arrive meanwhile.
        var first = batcher.RecommendAsync(Request("c0", 2), CancellationToken.None).AsTask();
        await ranking.ScanStarted.Task.WaitAsync(Wait);
        var rest = Enumerable.Range(1, 20).Select(i => batcher.RecommendAsync(Request($"c{i}", 1 + i % 5), CancellationToken.None).AsTask()).ToArray();
        while (batcher.Batcher.Queued < 20) await Task.Delay(1);
        ranking.Release.Set();

        var firstResult = await first.WaitAsync(Wait);
        var results = await Task.WhenAll(rest).WaitAsync(Wait);
        Assert.Equal("c0", firstResult.RecommendationId);
        for (int i = 1; i <= 20; i++)
        {
            // Each caller gets its own answer, not a neighbour's from the same batch.
            Assert.Equal($"c{i}", results[i - 1].RecommendationId);
            Assert.Equal(1 + i % 5, results[i - 1].Items.Length);
        }
        Assert.Equal(2, ranking.Scans);
        Assert.Equal([1, 20], ranking.BatchSizes);
        Assert.Equal(2, batcher.Batcher.Batches);
        Assert.Equal(21, batcher.Batcher.Items);
        Assert.Equal(20, batcher.Batcher.LargestBatch);
    }

    [Fact]
    public async Task A_batch_never_exceeds_the_maximum_and_every_request_is_answered()
    {
        var ranking = new GatedBatchRanking();
        await using var batcher = new RecommendBatcher(ranking, new MicroBatcherOptions { MaxBatch = 8 });
        var first = batcher.RecommendAsync(Request("c0", 1), CancellationToken.None).AsTask();
        await ranking.ScanStarted.Task.WaitAsync(Wait);
        var rest = Enumerable.Range(1, 20).Select(i => batcher.RecommendAsync(Request($"c{i}", 1), CancellationToken.None).AsTask()).ToArray();
        while (batcher.Batcher.Queued < 20) await Task.Delay(1);
        ranking.Release.Set();
        await first.WaitAsync(Wait);
        var results = await Task.WhenAll(rest).WaitAsync(Wait);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => $"c{i}"), results.Select(r => r.RecommendationId));
        Assert.Equal([1, 8, 8, 4], ranking.BatchSizes);
    }

    [Fact]
    public async Task Past_the_queue_bound_a_request_is_refused_as_overloaded_and_the_queued_ones_still_answer()
    {
        var ranking = new GatedBatchRanking();
        await using var batcher = new RecommendBatcher(ranking, new MicroBatcherOptions { MaxQueue = 3, RetryAfter = TimeSpan.FromMilliseconds(75) });
        var first = batcher.RecommendAsync(Request("c0", 1), CancellationToken.None).AsTask();
        await ranking.ScanStarted.Task.WaitAsync(Wait);
        var queued = Enumerable.Range(1, 3).Select(i => batcher.RecommendAsync(Request($"c{i}", 1), CancellationToken.None).AsTask()).ToArray();

        var refused = Assert.Throws<ServerOverloadedException>(() => { _ = batcher.RecommendAsync(Request("c4", 1), CancellationToken.None); });
        Assert.Equal(TimeSpan.FromMilliseconds(75), refused.RetryAfter);
        Assert.Equal(1, batcher.Batcher.Rejected);

        ranking.Release.Set();
        await first.WaitAsync(Wait);
        Assert.Equal(["c1", "c2", "c3"], (await Task.WhenAll(queued).WaitAsync(Wait)).Select(r => r.RecommendationId));
    }

    [Fact]
    public async Task A_request_cancelled_while_queued_is_answered_at_once_and_left_out_of_its_scan()
    {
        var ranking = new GatedBatchRanking();
        await using var batcher = new RecommendBatcher(ranking);
        var first = batcher.RecommendAsync(Request("c0", 1), CancellationToken.None).AsTask();
        await ranking.ScanStarted.Task.WaitAsync(Wait);
        using var cancel = new CancellationTokenSource();
        var doomed = batcher.RecommendAsync(Request("gone", 1), cancel.Token).AsTask();
        var kept = batcher.RecommendAsync(Request("kept", 1), CancellationToken.None).AsTask();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => doomed.WaitAsync(Wait));   // before the scan is released

        ranking.Release.Set();
        await first.WaitAsync(Wait);
        Assert.Equal("kept", (await kept.WaitAsync(Wait)).RecommendationId);
        Assert.Equal([1, 1], ranking.BatchSizes);
        Assert.DoesNotContain("gone", ranking.Seen);
    }

    [Fact]
    public async Task A_failing_scan_fails_the_requests_of_its_batch_and_the_next_batch_is_served()
    {
        var ranking = new GatedBatchRanking { FailFor = "bad" };
        await using var batcher = new RecommendBatcher(ranking);
        var first = batcher.RecommendAsync(Request("c0", 1), CancellationToken.None).AsTask();
        await ranking.ScanStarted.Task.WaitAsync(Wait);
        var bad = batcher.RecommendAsync(Request("bad", 1), CancellationToken.None).AsTask();
        var neighbour = batcher.RecommendAsync(Request("n", 1), CancellationToken.None).AsTask();
        ranking.Release.Set();
        await first.WaitAsync(Wait);
        var e = await Assert.ThrowsAsync<Protocol.ProtocolException>(() => bad.WaitAsync(Wait));
        Assert.Equal(Protocol.ErrorCode.InvalidArgument, e.Code);
        await Assert.ThrowsAsync<Protocol.ProtocolException>(() => neighbour.WaitAsync(Wait));
        Assert.Equal("after", (await batcher.RecommendAsync(Request("after", 1), CancellationToken.None).AsTask().WaitAsync(Wait)).RecommendationId);
    }

    [Fact]
    public async Task An_item_that_fails_alone_gets_its_error_and_its_batch_neighbours_their_results()
    {
        var ranking = new GatedBatchRanking();
        await using var batcher = new RecommendBatcher(ranking);
        var first = batcher.RecommendAsync(Request("c0", 1), CancellationToken.None).AsTask();
        await ranking.ScanStarted.Task.WaitAsync(Wait);
        var invalid = batcher.RecommendAsync(Request("invalid", 1), CancellationToken.None).AsTask();
        var neighbour = batcher.RecommendAsync(Request("n", 2), CancellationToken.None).AsTask();
        ranking.Release.Set();
        await first.WaitAsync(Wait);
        var e = await Assert.ThrowsAsync<Protocol.ProtocolException>(() => invalid.WaitAsync(Wait));
        Assert.Equal("invalid alone", e.Message);
        Assert.Equal(2, (await neighbour.WaitAsync(Wait)).Items.Length);
        Assert.Equal([1, 2], ranking.BatchSizes);
    }

    [Fact]
    public async Task Concurrent_recommends_over_the_wire_are_batched_and_each_client_gets_its_own_answer()
    {
        var ranking = new GatedBatchRanking();
        await using var batcher = new RecommendBatcher(ranking);
        await using var host = new InProcessServer(handlers: new ServerHandlers { Recommend = batcher, StatsSources = [batcher] });
        await using var a = host.Client();
        await using var b = host.Client();

        var first = a.RecommendAsync(new RecommendRequest { CustomerId = "first", K = 1 });
        await ranking.ScanStarted.Task.WaitAsync(Wait);
        var calls = Enumerable.Range(0, 30)
            .Select(i => (i % 2 == 0 ? a : b).RecommendAsync(new RecommendRequest { CustomerId = $"w{i}", K = 3, Category = "cat-" + i }))
            .ToArray();
        while (batcher.Batcher.Queued < 30) await Task.Delay(1);
        ranking.Release.Set();
        Assert.Equal("first", (await first.WaitAsync(Wait)).RecommendationId);
        var results = await Task.WhenAll(calls).WaitAsync(Wait);
        for (int i = 0; i < 30; i++)
        {
            Assert.Equal($"w{i}", results[i].RecommendationId);
            Assert.Equal([$"w{i}/cat-{i}/0", $"w{i}/cat-{i}/1", $"w{i}/cat-{i}/2"], results[i].Items.Select(x => x.ProductId));
        }
        Assert.Equal([1, 30], ranking.BatchSizes);

        var stats = await a.StatsAsync("recommend.");
        Assert.Equal(2, stats.Entries.Single(e => e.Name == "recommend.scans").Value);
        Assert.Equal(31, stats.Entries.Single(e => e.Name == "recommend.requests").Value);
    }

    private static RecommendRequest Request(string customer, int k) => new() { CustomerId = customer, K = k };

    /// <summary>
    /// Counts scans and their sizes. The first scan blocks until <see cref="Release"/> so a test can
    /// pile requests up behind it; an item is "customer/category/index", so answers can be matched.
    /// </summary>
    private sealed class GatedBatchRanking : IBatchRecommendHandler
    {
        private readonly List<int> _sizes = [];
        private readonly List<string> _seen = [];
        private int _scans;

        public TaskCompletionSource ScanStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public ManualResetEventSlim Release { get; } = new();
        public string? FailFor { get; init; }
        public int Scans => Volatile.Read(ref _scans);
        public int[] BatchSizes { get { lock (_sizes) return [.. _sizes]; } }
        public string[] Seen { get { lock (_sizes) return [.. _seen]; } }

        public BatchAnswer<RecommendResult>[] RecommendBatch(IReadOnlyList<RecommendRequest> requests)
        {
            Interlocked.Increment(ref _scans);
            lock (_sizes)
            {
                _sizes.Add(requests.Count);
                _seen.AddRange(requests.Select(r => r.CustomerId));
            }
            ScanStarted.TrySetResult();
            if (!Release.Wait(Wait)) throw new TimeoutException("the test never released the scan");
            if (FailFor is not null && requests.Any(r => r.CustomerId == FailFor))
                throw new Protocol.ProtocolException(Protocol.ErrorCode.InvalidArgument, "bad request in batch");
            return requests.Select(r => r.CustomerId == "invalid"
                ? BatchAnswer<RecommendResult>.Fail(new Protocol.ProtocolException(Protocol.ErrorCode.InvalidArgument, "invalid alone"))
                : new RecommendResult
                {
                    RecommendationId = r.CustomerId,
                    Items = Enumerable.Range(0, r.K).Select(i => new RecommendedItem { ProductId = $"{r.CustomerId}/{r.Category}/{i}", Score = -i }).ToArray(),
                    ModelVersion = "gated",
                }).ToArray();
        }
    }
}
