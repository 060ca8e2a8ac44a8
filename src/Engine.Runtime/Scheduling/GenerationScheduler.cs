using System.Collections.Concurrent;
using System.Diagnostics;
using Engine.Core.Backend;
using Engine.Runtime.Generation;
using Engine.Runtime.Llama;
using Engine.Runtime.Sampling;
using Engine.Runtime.Tokenization;

namespace Engine.Runtime.Scheduling;

/// <summary>
/// Continuous batching over one model: a single loop thread owns the model, the batched decoder and
/// every KV cache (STYLE.md habit 8, llama.cpp server's slots). Callers submit prompts from any
/// thread and read text pieces back; each step the loop runs one forward pass over one row per
/// decoding stream plus a chunk of at most <see cref="SchedulerOptions.PrefillChunk"/> prompt tokens
/// per prefilling stream, so weights are read once for all of them and a long prompt never freezes
/// the others. Admission: at most <see cref="SchedulerOptions.MaxStreams"/> streams run and
/// <see cref="SchedulerOptions.MaxQueue"/> wait; beyond that Submit throws
/// <see cref="SchedulerOverloadedException"/>. A stream's cancellation token (client cancel or
/// deadline) ends it at the next step.
/// </summary>
public sealed class GenerationScheduler : IDisposable
{
    private readonly LlamaModel _model;
    private readonly GgufTokenizer _tokenizer;
    private readonly SchedulerOptions _options;
    private readonly BatchedDecoder _decoder;
    private readonly ConcurrentQueue<GenerationStream> _queue = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Stack<KvCache> _freeCaches = new();
    private readonly List<Slot> _active = [];
    private readonly Thread _loop;
    private readonly int[] _endOfGeneration;
    private volatile bool _stopping;
    private int _admitted; // queued + active, for admission control
    private long _tokens, _steps, _rows, _completed, _rejected, _submitted;

    /// <summary>Starts the loop thread.</summary>
    public GenerationScheduler(LlamaModel model, GgufTokenizer tokenizer, SchedulerOptions? options = null)
    {
        _model = model;
        _tokenizer = tokenizer;
        _options = options ?? new SchedulerOptions();
        _options.Validate();
        int ctx = Math.Min(_options.ContextLength, model.Config.ContextLength);
        _decoder = new BatchedDecoder(model, _options.MaxBatchRows, _options.MaxStreams, ctx);
        _endOfGeneration = [.. model.EndOfGenerationIds];
        _loop = new Thread(Run) { IsBackground = true, Name = "generation-scheduler" };
        _loop.Start();
    }

    /// <summary>KV positions per stream.</summary>
    public int ContextLength => _decoder.ContextLength;

    /// <summary>Streams decoding now.</summary>
    public int ActiveStreams => Volatile.Read(ref _activeCount);
    private int _activeCount;

    /// <summary>Streams waiting for a slot.</summary>
    public int QueuedStreams => _queue.Count;

    /// <summary>Tokens generated since start.</summary>
    public long TokensGenerated => Interlocked.Read(ref _tokens);

    /// <summary>Forward steps run since start.</summary>
    public long Steps => Interlocked.Read(ref _steps);

    /// <summary>Rows processed since start (prefill + decode): rows / steps is the mean batch.</summary>
    public long Rows => Interlocked.Read(ref _rows);

    /// <summary>Streams completed since start.</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Generations accepted (queued) since start.</summary>
    public long Submitted => Interlocked.Read(ref _submitted);

    /// <summary>Submissions refused as overloaded since start.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Tokenizes <paramref name="prompt"/> (on the caller's thread) and queues it.</summary>
    public GenerationStream Submit(string prompt, GenerationOptions options, CancellationToken cancellationToken = default) =>
        Submit(_tokenizer.Encode(prompt, addSpecial: true, parseSpecial: false), options, cancellationToken);

    /// <summary>Queues a generation from prompt ids, or throws <see cref="SchedulerOverloadedException"/> when full.</summary>
    public GenerationStream Submit(int[] promptIds, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (promptIds.Length == 0) throw new ArgumentException("the prompt has no tokens", nameof(promptIds));
        if (promptIds.Length + 1 > ContextLength) throw new PromptTooLongException(promptIds.Length, ContextLength);
        if (Interlocked.Increment(ref _admitted) > _options.MaxStreams + _options.MaxQueue)
        {
            Interlocked.Decrement(ref _admitted);
            Interlocked.Increment(ref _rejected);
            throw new SchedulerOverloadedException(
                $"generation full: {_options.MaxStreams} streams running and {_options.MaxQueue} queued", _options.RetryAfter);
        }
        var stream = new GenerationStream(promptIds, options, cancellationToken);
        Interlocked.Increment(ref _submitted);
        _queue.Enqueue(stream);
        _wake.Release();
        return stream;
    }

    /// <summary>A running stream: its cache, progress and sampling state. Owned by the loop thread.</summary>
    private sealed class Slot
    {
        public required GenerationStream Stream;
        public required KvCache Cache;
        public required Sampler Sampler;
        public required StreamingDetokenizer Detokenizer;
        public required StopSequenceMatcher Stops;
        public required int[] History;        // [contextLength] prompt then generated ids
        public int Length;                     // ids in History
        public int Prefilled;                  // prompt ids already in the cache
        public int Position;                   // positions filled in the cache
        public int Generated;
        public int LastToken;
        public long FirstTokenAt;
    }

    private void Run()
    {
        int maxRows = _options.MaxBatchRows;
        var tokens = new int[maxRows];
        var segments = new BatchSegment[maxRows];
        var segmentSlots = new Slot[maxRows];
        var logits = new float[_options.MaxStreams * _decoder.VocabSize];
        while (!_stopping)
        {
            Admit();
            if (_active.Count == 0)
            {
                _wake.Wait(TimeSpan.FromMilliseconds(100));
                continue;
            }
            DropCancelled();
            if (_active.Count == 0) continue;

            // Decoding streams first (one row each), then prompt chunks in the rows left.
            int rows = 0, count = 0;
            foreach (Slot s in _active)
            {
                if (s.Prefilled < s.Stream.PromptIds.Length) continue;
                tokens[rows] = s.LastToken;
                segmentSlots[count] = s;
                segments[count++] = new BatchSegment(s.Cache, s.Position, rows, 1, WantLogits: true);
                rows++;
            }
            foreach (Slot s in _active)
            {
                int remaining = s.Stream.PromptIds.Length - s.Prefilled;
                if (remaining == 0) continue;
                int chunk = Math.Min(Math.Min(remaining, _options.PrefillChunk), maxRows - rows);
                if (chunk <= 0) break;
                s.Stream.PromptIds.AsSpan(s.Prefilled, chunk).CopyTo(tokens.AsSpan(rows));
                segmentSlots[count] = s;
                segments[count++] = new BatchSegment(s.Cache, s.Position, rows, chunk, WantLogits: chunk == remaining);
                rows += chunk;
            }

            try
            {
                _decoder.Step(tokens.AsSpan(0, rows), segments.AsSpan(0, count), logits);
            }
            catch (Exception e)
            {
                foreach (Slot s in _active.ToArray()) Finish(s, null, e);
                continue;
            }
            Interlocked.Increment(ref _steps);
            Interlocked.Add(ref _rows, rows);

            int logitRow = 0;
            for (int i = 0; i < count; i++)
            {
                Slot s = segmentSlots[i];
                BatchSegment seg = segments[i];
                s.Position += seg.Count;
                if (s.Prefilled < s.Stream.PromptIds.Length) s.Prefilled += seg.Count;
                if (!seg.WantLogits) continue;
                Sample(s, logits.AsSpan(logitRow++ * _decoder.VocabSize, _decoder.VocabSize));
            }
        }
        foreach (Slot s in _active.ToArray()) Finish(s, null, new OperationCanceledException("the scheduler stopped"));
    }

    private void Admit()
    {
        while (_active.Count < _options.MaxStreams && _queue.TryDequeue(out GenerationStream? stream))
        {
            if (stream.CancellationToken.IsCancellationRequested)
            {
                Interlocked.Decrement(ref _admitted);
                stream.Fail(new OperationCanceledException(stream.CancellationToken));
                continue;
            }
            KvCache cache = _freeCaches.Count > 0 ? _freeCaches.Pop() : _decoder.AllocateCache();
            var slot = new Slot
            {
                Stream = stream,
                Cache = cache,
                Sampler = new Sampler(_decoder.VocabSize, stream.Options.Sampling),
                Detokenizer = _tokenizer.CreateStreamingDetokenizer(renderSpecial: false, removeLeadingSpace: false),
                Stops = new StopSequenceMatcher(stream.Options.StopSequences),
                History = new int[ContextLength],
            };
            stream.PromptIds.CopyTo(slot.History, 0);
            slot.Length = stream.PromptIds.Length;
            _active.Add(slot);
            Interlocked.Increment(ref _activeCount);
        }
    }

    private void DropCancelled()
    {
        for (int i = _active.Count - 1; i >= 0; i--)
        {
            Slot s = _active[i];
            if (s.Stream.CancellationToken.IsCancellationRequested)
                Finish(s, null, new OperationCanceledException(s.Stream.CancellationToken));
        }
    }

    /// <summary>Samples the next token of <paramref name="s"/> and emits its text; ends the stream when it is done.</summary>
    private void Sample(Slot s, ReadOnlySpan<float> logits)
    {
        GenerationOptions o = s.Stream.Options;
        int token = s.Sampler.Sample(logits, s.History.AsSpan(0, s.Length));
        s.History[s.Length++] = token;
        s.Generated++;
        s.LastToken = token;
        Interlocked.Increment(ref _tokens);
        if (s.FirstTokenAt == 0) s.FirstTokenAt = Stopwatch.GetTimestamp();

        int limit = o.MaxTokens < 0 ? int.MaxValue : o.MaxTokens;
        bool eog = o.StopAtEndOfGeneration && Array.IndexOf(_endOfGeneration, token) >= 0;
        FinishReason? reason = eog ? FinishReason.EndOfGeneration
            : s.Generated >= limit ? FinishReason.MaxTokens
            : s.Length >= ContextLength ? FinishReason.ContextFull
            : null;
        string piece = eog ? "" : s.Detokenizer.Append(token); // the EOG token has no text
        if (reason is not null) piece += s.Detokenizer.Flush();
        string text = s.Stops.Append(piece);
        if (s.Stops.Stopped) reason = FinishReason.StopSequence;
        else if (reason is not null) text += s.Stops.Flush();
        s.Stream.Emit(text);
        if (reason is not null) Finish(s, reason, null);
    }

    private void Finish(Slot s, FinishReason? reason, Exception? error)
    {
        _active.Remove(s);
        Interlocked.Decrement(ref _activeCount);
        Interlocked.Decrement(ref _admitted);
        _freeCaches.Push(s.Cache);
        if (error is not null)
        {
            s.Stream.Fail(error);
            return;
        }
        Interlocked.Increment(ref _completed);
        s.Stream.Complete(new ScheduledGenerationResult(s.Stops.Emitted, s.Generated, s.Stream.PromptIds.Length, reason!.Value,
            s.Sampler.Seed, Stopwatch.GetElapsedTime(s.Stream.SubmittedAt, s.FirstTokenAt)));
    }

    /// <summary>Stops the loop: streams still running or queued fail with <see cref="OperationCanceledException"/>.</summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Release();
        _loop.Join();
        while (_queue.TryDequeue(out GenerationStream? stream)) stream.Fail(new OperationCanceledException("the scheduler stopped"));
        foreach (KvCache cache in _freeCaches) cache.Dispose();
        _decoder.Dispose();
        _wake.Dispose();
    }
}
