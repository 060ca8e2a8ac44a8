using System.Text;

namespace Engine.Runtime.Generation;

/// <summary>
/// Watches the streamed text for stop sequences. Text that could be the start of a stop sequence is
/// held back until it is known not to be one, so nothing past a stop sequence is ever emitted.
/// </summary>
internal sealed class StopSequenceMatcher
{
    private readonly IReadOnlyList<string> _stops;
    private readonly StringBuilder _text = new(); // all text seen
    private int _emitted;                         // chars of _text handed out

    public StopSequenceMatcher(IReadOnlyList<string> stops) => _stops = stops;

    /// <summary>The whole text emitted so far (ends before a stop sequence once one matched).</summary>
    public string Emitted => _text.ToString(0, _emitted);

    /// <summary>True once a stop sequence has matched.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds a piece; returns the text now safe to emit.</summary>
    public string Append(string piece)
    {
        if (Stopped || piece.Length == 0) return "";
        _text.Append(piece);
        if (_stops.Count == 0) return Take(_text.Length);

        string all = _text.ToString();
        int stopAt = -1;
        foreach (var s in _stops)
        {
            // A match can only start where it could not have been seen before this piece.
            int from = Math.Max(0, all.Length - piece.Length - s.Length + 1);
            int i = all.IndexOf(s, from, StringComparison.Ordinal);
            if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
        }
        if (stopAt >= 0)
        {
            Stopped = true;
            string outText = stopAt > _emitted ? all[_emitted..stopAt] : "";
            _emitted = Math.Max(_emitted, stopAt);
            _text.Length = _emitted;
            return outText;
        }

        // Hold back the longest tail that is a proper prefix of some stop sequence.
        int hold = 0;
        foreach (var s in _stops)
            for (int len = Math.Min(s.Length - 1, all.Length); len > hold; len--)
                if (string.CompareOrdinal(all, all.Length - len, s, 0, len) == 0) { hold = len; break; }
        return Take(all.Length - hold);
    }

    /// <summary>Releases held-back text at the end of generation (no stop sequence followed it).</summary>
    public string Flush() => Stopped ? "" : Take(_text.Length);

    private string Take(int upTo)
    {
        if (upTo <= _emitted) return "";
        string s = _text.ToString(_emitted, upTo - _emitted);
        _emitted = upTo;
        return s;
    }
}
