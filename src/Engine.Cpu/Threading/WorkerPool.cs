using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Engine.Cpu.Threading;

/// <summary>
/// A persistent pool of compute threads, released once per op by a cheap barrier, in the manner of
/// llama.cpp's ggml thread pool: the calling thread is worker 0 and takes part in every job, the other
/// <c>Count - 1</c> threads spin for a short while between jobs (ops of a decode step follow each other
/// within microseconds) and then block on a monitor so an idle backend costs nothing.
/// DESIGN.md: a fork-join of tens of microseconds per call (Parallel.For) eats a large share of a token,
/// so no Task or Parallel machinery is used here, and nothing is allocated per job.
/// <para>
/// Jobs share their work through a counter (any subset of the workers, the caller alone included, finishes
/// the whole job). That lets the caller close a job once it has run out of work: a worker that was not yet
/// scheduled when the job opened (a busy machine, a worker still waking from its sleep) then skips it
/// instead of making the caller wait a time slice for it. The caller waits only for workers that joined.
/// </para>
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    /// <summary>A unit of parallel work. Workers that join run <see cref="Execute"/> once each.</summary>
    internal abstract class Job
    {
        /// <summary>
        /// Runs this worker's share; <paramref name="worker"/> is in <c>[0, workers)</c> (an index for per-worker
        /// scratch). Work must be taken from a shared counter so that whichever workers join finish all of it.
        /// </summary>
        public abstract void Execute(int worker, int workers);
    }

    // _state packs the open job: generation in the high 32 bits, a "closed" flag, and the number of
    // workers (other than the caller) inside Execute in the low bits.
    private const long ClosedFlag = 1L << 31;
    private const long CountMask = ClosedFlag - 1;

    private readonly Thread[] _threads;
    private readonly object _gate = new();
    private readonly long _spinTicks;
    private Job? _job;
    private int _generation; // bumped once per dispatched job (and on dispose)
    private long _state;
    private int _sleepers;   // workers blocked in Monitor.Wait
    private volatile bool _stopping;
    private Exception? _error;

    public WorkerPool(int threads, int spinMicroseconds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(spinMicroseconds);
        Count = threads;
        _spinTicks = spinMicroseconds * Stopwatch.Frequency / 1_000_000;
        _threads = new Thread[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int index = i + 1;
            _threads[i] = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"engine-cpu-{index}" };
            _threads[i].Start();
        }
    }

    /// <summary>Total workers, the calling thread included.</summary>
    public int Count { get; }

    /// <summary>Runs <paramref name="job"/> on the caller and every worker that joins in time; returns when it is done. Not reentrant.</summary>
    public void Run(Job job)
    {
        if (_threads.Length == 0)
        {
            job.Execute(0, 1);
            return;
        }
        ObjectDisposedException.ThrowIf(_stopping, this);
        _job = job;
        _error = null;
        int generation = _generation + 1;
        Volatile.Write(ref _state, (long)generation << 32); // open, nobody inside yet
        Interlocked.Exchange(ref _generation, generation);  // full fence: job and state are visible first
        if (Volatile.Read(ref _sleepers) > 0)
            lock (_gate) Monitor.PulseAll(_gate);

        Exception? mine = null;
        try { job.Execute(0, Count); }
        catch (Exception e) { mine = e; }

        // Out of work: close the job to latecomers, then wait for the workers inside it.
        Interlocked.Or(ref _state, ClosedFlag);
        var spin = new SpinWait();
        while ((Volatile.Read(ref _state) & CountMask) != 0) spin.SpinOnce(sleep1Threshold: -1);
        _job = null;
        if (mine is not null) ExceptionDispatchInfo.Throw(mine);
        if (_error is { } error) ExceptionDispatchInfo.Throw(error);
    }

    private void WorkerLoop(int index)
    {
        int seen = 0;
        while (true)
        {
            int g = WaitForGeneration(seen);
            if (_stopping) return;
            seen = g;
            if (!TryJoin(g)) continue;
            try { _job!.Execute(index, Count); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            Interlocked.Decrement(ref _state);
        }
    }

    /// <summary>Enters job <paramref name="generation"/> unless the caller has closed it (or moved past it).</summary>
    private bool TryJoin(int generation)
    {
        long s = Volatile.Read(ref _state);
        while (true)
        {
            if ((int)(s >> 32) != generation || (s & ClosedFlag) != 0) return false;
            long seen = Interlocked.CompareExchange(ref _state, s + 1, s);
            if (seen == s) return true;
            s = seen;
        }
    }

    /// <summary>Spins up to the spin budget for a new generation, then blocks until one comes.</summary>
    private int WaitForGeneration(int seen)
    {
        int g = Volatile.Read(ref _generation);
        if (g != seen) return g;
        long start = Stopwatch.GetTimestamp();
        for (int i = 1; ; i++)
        {
            Thread.SpinWait(8);
            g = Volatile.Read(ref _generation);
            if (g != seen) return g;
            if ((i & 63) == 0 && Stopwatch.GetTimestamp() - start > _spinTicks) break;
        }
        lock (_gate)
        {
            // Dekker handshake with Run: our sleeper count is published (full fence) before we re-read the
            // generation, and Run bumps the generation (full fence) before it reads the sleeper count, so
            // either we see the new generation here or Run sees us and pulses.
            Interlocked.Increment(ref _sleepers);
            while ((g = Volatile.Read(ref _generation)) == seen && !_stopping) Monitor.Wait(_gate);
            Interlocked.Decrement(ref _sleepers);
        }
        return g;
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        Interlocked.Increment(ref _generation);
        lock (_gate) Monitor.PulseAll(_gate);
        foreach (var t in _threads) t.Join();
    }
}
