using System.Diagnostics;
using Engine.Runtime.Llama;
using Engine.Runtime.Sampling;
using Engine.Runtime.Tokenization;

namespace Engine.Runtime.Generation;

/// <summary>
/// The generation loop of one sequence: prompt → ids → prefill (batched forward) → sample → one-token
/// forward steps, until an end-of-generation token, a stop sequence, the token limit or a full
/// context. Streams each token (id and printable text) through a callback as it is produced.
/// <para>
/// Without a tokenizer (ids in, ids out, no stop sequences) a decode step allocates nothing: the
/// token history is a buffer of the context's length allocated here once.
/// Not thread-safe: one owner drives a generator and its decoder.
/// </para>
/// </summary>
public sealed class Generator
{
    private readonly LlamaDecoder _decoder;
    private readonly GgufTokenizer? _tokenizer;
    private readonly int[] _history;            // [contextLength] prompt then generated ids
    private readonly int[] _endOfGeneration;    // EOS/EOT ids

    /// <summary>A generator over <paramref name="decoder"/>; <paramref name="tokenizer"/> is needed for text prompts, text output and stop sequences.</summary>
    public Generator(LlamaDecoder decoder, GgufTokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        _decoder = decoder;
        _tokenizer = tokenizer;
        _history = new int[decoder.ContextLength];
        _endOfGeneration = [.. decoder.Model.EndOfGenerationIds];
    }

    public LlamaDecoder Decoder => _decoder;

    /// <summary>The tokenizer, or null when the generator works on ids only.</summary>
    public GgufTokenizer? Tokenizer => _tokenizer;

    /// <summary>
    /// The prompt's ids: BOS as the vocabulary asks, control-token texts such as <c>&lt;s&gt;</c> in
    /// <paramref name="prompt"/> kept as plain text (a shopper's text must not inject control tokens).
    /// </summary>
    public int[] Tokenize(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var tokenizer = _tokenizer ?? throw new InvalidOperationException("a text prompt needs a tokenizer; pass prompt ids instead");
        return tokenizer.Encode(prompt, addSpecial: true, parseSpecial: false);
    }

    /// <summary>Tokenizes <paramref name="prompt"/> (see <see cref="Tokenize"/>) and generates from it.</summary>
    public GenerationResult Generate(string prompt, GenerationOptions options, Action<GeneratedToken>? onToken = null, CancellationToken cancellationToken = default) =>
        Generate(Tokenize(prompt), options, onToken, cancellationToken);

    /// <summary>
    /// Generates from <paramref name="promptIds"/> (BOS included when the model wants one), starting
    /// from an empty KV cache. Throws <see cref="PromptTooLongException"/> when the prompt leaves no
    /// position to generate into.
    /// </summary>
    public GenerationResult Generate(ReadOnlySpan<int> promptIds, GenerationOptions options, Action<GeneratedToken>? onToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (promptIds.IsEmpty) throw new ArgumentException("the prompt has no tokens", nameof(promptIds));
        int ctx = _decoder.ContextLength;
        if (promptIds.Length + 1 > ctx) throw new PromptTooLongException(promptIds.Length, ctx);
        if (options.StopSequences.Count > 0 && _tokenizer is null)
            throw new InvalidOperationException("stop sequences need a tokenizer");

        var sampler = new Sampler(_decoder.VocabSize, options.Sampling);
        // Pieces print after the prompt, so the first one keeps its leading space (as llama.cpp prints it).
        var detok = _tokenizer?.CreateStreamingDetokenizer(renderSpecial: false, removeLeadingSpace: false);
        var stops = _tokenizer is null ? null : new StopSequenceMatcher(options.StopSequences);
        int promptLength = promptIds.Length;
        promptIds.CopyTo(_history);
        int length = promptLength;
        int limit = options.MaxTokens < 0 ? int.MaxValue : options.MaxTokens;

        _decoder.Reset();
        long t0 = Stopwatch.GetTimestamp();
        var logits = _decoder.Forward(promptIds);
        long t1 = Stopwatch.GetTimestamp();
        int steps = 0;
        FinishReason? reason;

        while (true)
        {
            int token = sampler.Sample(logits, _history.AsSpan(0, length));
            _history[length++] = token;
            int generated = length - promptLength;

            bool eog = options.StopAtEndOfGeneration && Array.IndexOf(_endOfGeneration, token) >= 0;
            if (eog) reason = FinishReason.EndOfGeneration;
            else if (generated >= limit) reason = FinishReason.MaxTokens;
            else if (length >= ctx) reason = FinishReason.ContextFull;
            else if (cancellationToken.IsCancellationRequested) reason = FinishReason.Cancelled;
            else reason = null;
            bool finishing = reason is not null;

            string text = "";
            if (detok is not null && stops is not null)
            {
                string piece = eog ? "" : detok.Append(token); // the EOG token has no text
                if (finishing) piece += detok.Flush();
                text = stops.Append(piece);
                if (stops.Stopped)
                {
                    reason = FinishReason.StopSequence;
                    finishing = true;
                }
                else if (finishing)
                {
                    text += stops.Flush();
                }
            }
            onToken?.Invoke(new GeneratedToken(token, text));
            if (finishing) break;

            logits = _decoder.Forward(token);
            steps++;
        }
        long t2 = Stopwatch.GetTimestamp();

        return new GenerationResult
        {
            PromptIds = promptIds.ToArray(),
            TokenIds = _history.AsSpan(promptLength, length - promptLength).ToArray(),
            Text = stops?.Emitted ?? "",
            FinishReason = reason!.Value,
            Seed = sampler.Seed,
            PrefillTime = Stopwatch.GetElapsedTime(t0, t1),
            DecodeTime = Stopwatch.GetElapsedTime(t1, t2),
            DecodeSteps = steps,
        };
    }
}
