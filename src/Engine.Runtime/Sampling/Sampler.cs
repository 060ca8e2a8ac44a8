using System.Security.Cryptography;

namespace Engine.Runtime.Sampling;

/// <summary>
/// Chooses the next token from a row of logits with <see cref="SamplingOptions"/>, as llama.cpp's
/// default sampler chain does (src/llama-sampling.cpp): logit bias, penalties, top-k, top-p, min-p,
/// temperature, then a draw from the softmax with our own seeded <see cref="Xoshiro256StarStar"/>.
/// <para>
/// The candidate arrays are allocated once for the vocabulary: <see cref="Sample"/> allocates nothing.
/// One sampler per sequence; not thread-safe.
/// </para>
/// </summary>
public sealed class Sampler
{
    private readonly SamplingOptions _o;
    private readonly int _vocab;
    private readonly int[] _biasIds;       // tokens with a logit bias
    private readonly float[] _biasValues;  // their biases
    private readonly int[] _ids;           // [vocab] candidate token ids
    private readonly float[] _logits;      // [vocab] candidate logits, parallel to _ids
    private readonly int[] _counts;        // [vocab] occurrences in the penalty window (all zero between calls)
    private Xoshiro256StarStar _rng;

    /// <summary>A sampler for rows of <paramref name="vocabSize"/> logits.</summary>
    public Sampler(int vocabSize, SamplingOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _o = options;
        _vocab = vocabSize;
        var bias = options.LogitBias ?? new Dictionary<int, float>();
        _biasIds = new int[bias.Count];
        _biasValues = new float[bias.Count];
        int i = 0;
        foreach (var (id, value) in bias)
        {
            if ((uint)id >= (uint)vocabSize) throw new ArgumentException($"logit bias names token {id}, outside the vocabulary of {vocabSize}");
            _biasIds[i] = id;
            _biasValues[i++] = value;
        }
        _ids = new int[vocabSize];
        _logits = new float[vocabSize];
        _counts = new int[vocabSize];
        Seed = options.Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
        _rng = new Xoshiro256StarStar(Seed);
    }

    /// <summary>The seed in use (the option's, or the random one picked when it was null): report it to reproduce a run.</summary>
    public ulong Seed { get; }

    public SamplingOptions Options => _o;

    /// <summary>Restarts the random stream from <see cref="Seed"/>.</summary>
    public void Reset() => _rng = new Xoshiro256StarStar(Seed);

    /// <summary>
    /// The next token for <paramref name="logits"/> <c>[vocab]</c>. <paramref name="history"/> is the
    /// sequence so far (prompt and generated tokens): its last <see cref="SamplingOptions.RepeatLastN"/>
    /// tokens are penalized.
    /// </summary>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        if (logits.Length != _vocab) throw new ArgumentException($"expected {_vocab} logits, got {logits.Length}", nameof(logits));
        logits.CopyTo(_logits);
        for (int i = 0; i < _vocab; i++) _ids[i] = i;

        // Logit bias and penalties index by token id: the candidates are still in id order here.
        for (int i = 0; i < _biasIds.Length; i++) _logits[_biasIds[i]] += _biasValues[i];
        ApplyPenalties(history);

        if (_o.Temperature <= 0) return Greedy();

        int count = _vocab;
        bool sorted = false;
        if (_o.TopK > 0 && _o.TopK < count)
        {
            count = TopK(_o.TopK);
            sorted = true;
        }
        if (_o.TopP < 1f)
        {
            if (!sorted) SortDescending(count);
            sorted = true;
            count = TopP(count, _o.TopP);
        }
        if (_o.MinP > 0f) count = MinP(count, _o.MinP);

        // Temperature, then a draw from the softmax over the survivors.
        float max = float.NegativeInfinity;
        for (int i = 0; i < count; i++) max = MathF.Max(max, _logits[i]);
        if (float.IsNegativeInfinity(max)) ThrowAllBanned();
        double sum = 0;
        float invT = 1f / _o.Temperature;
        for (int i = 0; i < count; i++)
        {
            float p = MathF.Exp((_logits[i] - max) * invT);
            _logits[i] = p; // now unnormalized probabilities
            sum += p;
        }
        double u = _rng.NextDouble() * sum;
        double acc = 0;
        for (int i = 0; i < count; i++)
        {
            acc += _logits[i];
            if (u < acc) return _ids[i];
        }
        // Rounding left u at or past the total: the last candidate with non-zero mass.
        for (int i = count - 1; i >= 0; i--) if (_logits[i] > 0) return _ids[i];
        return _ids[0];
    }

    /// <summary>llama.cpp's penalties: each distinct token of the window once, repeat then frequency and presence.</summary>
    private void ApplyPenalties(ReadOnlySpan<int> history)
    {
        bool any = _o.RepeatPenalty != 1f || _o.FrequencyPenalty != 0f || _o.PresencePenalty != 0f;
        if (!any || _o.RepeatLastN == 0 || history.IsEmpty) return;
        int n = _o.RepeatLastN < 0 ? history.Length : Math.Min(_o.RepeatLastN, history.Length);
        var window = history[^n..];
        foreach (int t in window)
            if ((uint)t < (uint)_vocab) _counts[t]++;
        foreach (int t in window)
        {
            if ((uint)t >= (uint)_vocab) continue;
            int c = _counts[t];
            if (c == 0) continue; // already penalized
            ref float l = ref _logits[t];
            l = l <= 0 ? l * _o.RepeatPenalty : l / _o.RepeatPenalty;
            l -= c * _o.FrequencyPenalty + _o.PresencePenalty;
            _counts[t] = 0;
        }
    }

    private int Greedy()
    {
        int best = 0;
        for (int i = 1; i < _vocab; i++) if (_logits[i] > _logits[best]) best = i;
        if (float.IsNegativeInfinity(_logits[best]) || float.IsNaN(_logits[best])) ThrowAllBanned();
        return best;
    }

    /// <summary>Moves the k best candidates to the front, sorted best first; returns k.</summary>
    private int TopK(int k)
    {
        // Min-heap of the k best so far in [0, k): the root is the worst of them.
        for (int i = k / 2 - 1; i >= 0; i--) SiftDown(i, k);
        for (int i = k; i < _vocab; i++)
        {
            if (Better(i, 0))
            {
                Swap(i, 0);
                SiftDown(0, k);
            }
        }
        // Heap sort: repeatedly move the worst to the end, leaving [0, k) best first.
        for (int end = k - 1; end > 0; end--)
        {
            Swap(0, end);
            SiftDown(0, end);
        }
        return k;
    }

    /// <summary>Sorts the first <paramref name="count"/> candidates best first (heap sort: no allocation).</summary>
    private void SortDescending(int count)
    {
        for (int i = count / 2 - 1; i >= 0; i--) SiftDown(i, count);
        for (int end = count - 1; end > 0; end--)
        {
            Swap(0, end);
            SiftDown(0, end);
        }
    }

    /// <summary>Keeps the smallest prefix (of sorted candidates) whose probability reaches p, at least one.</summary>
    private int TopP(int count, float p)
    {
        float max = _logits[0];
        if (float.IsNegativeInfinity(max)) ThrowAllBanned();
        double sum = 0;
        for (int i = 0; i < count; i++) sum += MathF.Exp(_logits[i] - max);
        double cum = 0;
        for (int i = 0; i < count; i++)
        {
            cum += MathF.Exp(_logits[i] - max) / sum;
            if (cum >= p) return i + 1;
        }
        return count;
    }

    /// <summary>Keeps candidates with probability ≥ minP × p_max, i.e. logit ≥ max + ln(minP), in their order.</summary>
    private int MinP(int count, float minP)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < count; i++) max = MathF.Max(max, _logits[i]);
        if (float.IsNegativeInfinity(max)) ThrowAllBanned();
        float threshold = max + MathF.Log(minP);
        int kept = 0;
        for (int i = 0; i < count; i++)
        {
            if (_logits[i] >= threshold)
            {
                _logits[kept] = _logits[i];
                _ids[kept] = _ids[i];
                kept++;
            }
        }
        return kept;
    }

    /// <summary>Candidate a ranks before b: higher logit, then lower id (so ties resolve as greedy does).</summary>
    private bool Better(int a, int b) =>
        _logits[a] > _logits[b] || (_logits[a] == _logits[b] && _ids[a] < _ids[b]);

    /// <summary>Min-heap on "worse first" over [0, size).</summary>
    private void SiftDown(int i, int size)
    {
        while (true)
        {
            int l = 2 * i + 1;
            if (l >= size) return;
            int worst = l;
            int r = l + 1;
            if (r < size && Better(l, r)) worst = r;
            if (!Better(i, worst)) return;
            Swap(i, worst);
            i = worst;
        }
    }

    private void Swap(int a, int b)
    {
        (_logits[a], _logits[b]) = (_logits[b], _logits[a]);
        (_ids[a], _ids[b]) = (_ids[b], _ids[a]);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowAllBanned() =>
        throw new InvalidOperationException("no token can be sampled: every logit is -infinity (all tokens banned by logit bias?)");
}
