using Engine.Cpu.Threading;

namespace Engine.Cpu.Tests;

public sealed class WorkerPoolTests
{
    private sealed class CountingJob : WorkerPool.Job
    {
        public int Calls;
        public int WorkerMask;
        public override void Execute(int worker, int workers)
        {
            Interlocked.Increment(ref Calls);
            Interlocked.Or(ref WorkerMask, 1 << worker);
        }
    }

    private sealed class ThrowingJob : WorkerPool.Job
    {
        public override void Execute(int worker, int workers)
        {
            if (worker == workers - 1) throw new InvalidOperationException("boom");
        }
    }

    [Theory]
    [InlineData(1, 50)]
    [InlineData(3, 50)]
    [InlineData(3, 0)] // workers block at once: every job goes through the sleep/wake handshake
    public void Every_worker_runs_each_job_exactly_once(int threads, int spinMicroseconds)
    {
        using var pool = new WorkerPool(threads, spinMicroseconds);
        var job = new CountingJob();
        const int jobs = 2000;
        for (int i = 0; i < jobs; i++)
        {
            pool.Run(job);
            Assert.Equal((i + 1) * threads, Volatile.Read(ref job.Calls)); // Run returns only when all are done
        }
        Assert.Equal((1 << threads) - 1, job.WorkerMask);
    }

    [Fact]
    public void An_exception_in_a_worker_reaches_the_caller_and_the_pool_survives()
    {
        using var pool = new WorkerPool(2, 10);
        Assert.Throws<InvalidOperationException>(() => pool.Run(new ThrowingJob()));
        var job = new CountingJob();
        pool.Run(job);
        Assert.Equal(2, job.Calls);
    }
}
