using Engine.Cpu.Threading;

namespace Engine.Cpu.Tests;

public sealed class WorkerPoolTests
{
    /// <summary>Items taken from a counter, each marked done; records which workers took part.</summary>
    private sealed class ItemsJob : WorkerPool.Job
    {
        public readonly int[] Done = new int[64];
        public int Next;
        public int WorkerMask;

        public override void Execute(int worker, int workers)
        {
            Interlocked.Or(ref WorkerMask, 1 << worker);
            int i;
            while ((i = Interlocked.Increment(ref Next) - 1) < Done.Length)
            {
                Interlocked.Increment(ref Done[i]);
                Thread.SpinWait(20);
            }
        }
    }

    /// <summary>Worker 0 (the caller) holds the job open until another worker has joined.</summary>
    private sealed class WaitForHelpJob : WorkerPool.Job
    {
        public int Joined;
        public override void Execute(int worker, int workers)
        {
            if (worker != 0)
            {
                Interlocked.Increment(ref Joined);
                return;
            }
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (Volatile.Read(ref Joined) == 0 && DateTime.UtcNow < deadline) Thread.Yield();
        }
    }

    private sealed class ThrowingJob : WorkerPool.Job
    {
        private int _thrown;
        public override void Execute(int worker, int workers)
        {
            if (worker != 0)
            {
                Volatile.Write(ref _thrown, 1);
                throw new InvalidOperationException("boom");
            }
            var deadline = DateTime.UtcNow.AddSeconds(10); // hold the job open until the worker has joined and thrown
            while (Volatile.Read(ref _thrown) == 0 && DateTime.UtcNow < deadline) Thread.Yield();
        }
    }

    [Theory]
    [InlineData(1, 50)]
    [InlineData(3, 50)]
    [InlineData(3, 0)] // workers block at once: jobs go through the sleep/wake handshake
    public void Every_item_of_every_job_is_done_exactly_once(int threads, int spinMicroseconds)
    {
        using var pool = new WorkerPool(threads, spinMicroseconds);
        for (int j = 0; j < 500; j++)
        {
            var job = new ItemsJob();
            pool.Run(job);
            Assert.All(job.Done, d => Assert.Equal(1, d)); // Run returns only when all items are done
            Assert.True((job.WorkerMask & 1) == 1, "the caller takes part as worker 0");
        }
    }

    [Theory]
    [InlineData(50)]
    [InlineData(0)]
    public void Workers_join_an_open_job(int spinMicroseconds)
    {
        using var pool = new WorkerPool(2, spinMicroseconds);
        for (int j = 0; j < 20; j++)
        {
            var job = new WaitForHelpJob();
            pool.Run(job);
            Assert.Equal(1, job.Joined);
        }
    }

    [Fact]
    public void An_exception_in_a_worker_reaches_the_caller_and_the_pool_survives()
    {
        using var pool = new WorkerPool(2, 10);
        Assert.Throws<InvalidOperationException>(() => pool.Run(new ThrowingJob()));
        var job = new ItemsJob();
        pool.Run(job);
        Assert.All(job.Done, d => Assert.Equal(1, d));
    }
}
