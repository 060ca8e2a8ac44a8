namespace Engine.Runtime.Ranking;

/// <summary>
/// The catalog's categories as small integer ids (the index facet) and the words that name them: each category
/// name, each word of a multi-word name that is not itself a category ("electronics"), and every product type
/// ("sneakers" → shoes, "frying pan" → kitchen), matched on singular forms so "bags" finds "bag".
/// Ids are the position in the ordinal-sorted list of distinct category names: the same catalog gives the same ids.
/// </summary>
public sealed class CategoryVocabulary
{
    private readonly string[] _names;                                   // id → name
    private readonly Dictionary<string, int> _ids;                      // name → id
    private readonly Dictionary<string, HashSet<int>> _phrases = new(StringComparer.Ordinal); // singular phrase → ids
    private readonly int _longestPhrase;

    /// <summary>
    /// Builds the vocabulary of <paramref name="products"/>. With <paramref name="keepIds"/> (an earlier vocabulary's
    /// <see cref="Names"/>), those names keep their ids and new categories are appended, so an index built with the earlier
    /// ids stays valid after a catalog change.
    /// </summary>
    public CategoryVocabulary(IEnumerable<CatalogProduct> products, IReadOnlyList<string>? keepIds = null)
    {
        var list = products as IReadOnlyCollection<CatalogProduct> ?? products.ToList();
        var known = keepIds ?? [];
        _names = [.. known, .. list.Select(p => p.Category).Distinct(StringComparer.Ordinal)
                                   .Where(n => !known.Contains(n)).Order(StringComparer.Ordinal)];
        _ids = _names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);
        var nameSet = new HashSet<string>(_names.Select(Singular), StringComparer.Ordinal);
        foreach (var name in _names)
        {
            int id = _ids[name];
            Add(Singular(name), id);
            var words = Words(name);
            if (words.Count > 1)
                foreach (var w in words)
                    if (!nameSet.Contains(w)) Add(w, id);
        }
        foreach (var p in list)
            if (p.ProductType.Length > 0) Add(Singular(p.ProductType), _ids[p.Category]);
        _longestPhrase = _phrases.Keys.Select(k => k.Count(c => c == ' ') + 1).DefaultIfEmpty(1).Max();
    }

    /// <summary>Number of categories.</summary>
    public int Count => _names.Length;

    /// <summary>Category names by id.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>The id of a category name (case-insensitive), or -1.</summary>
    public int IdOf(string name) => _ids.TryGetValue(name.Trim().ToLowerInvariant(), out int id) ? id : -1;

    /// <summary>Categories named in <paramref name="text"/> (longest phrases first, each word used once); empty when none.</summary>
    public IReadOnlyList<int> Match(string text)
    {
        var words = Words(text);
        var found = new SortedSet<int>();
        for (int i = 0; i < words.Count;)
        {
            int used = 0;
            for (int n = Math.Min(_longestPhrase, words.Count - i); n >= 1 && used == 0; n--)
                if (_phrases.TryGetValue(string.Join(' ', words.Skip(i).Take(n)), out var ids))
                {
                    found.UnionWith(ids);
                    used = n;
                }
            i += Math.Max(used, 1);
        }
        return [.. found];
    }

    private void Add(string phrase, int id)
    {
        if (phrase.Length == 0) return;
        if (!_phrases.TryGetValue(phrase, out var ids)) _phrases[phrase] = ids = [];
        ids.Add(id);
    }

    private static string Singular(string phrase) => string.Join(' ', Words(phrase));

    /// <summary>Lower-case words (letters, digits, apostrophes, inner hyphens) in singular form.</summary>
    internal static List<string> Words(string text)
    {
        var words = new List<string>();
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && !char.IsLetterOrDigit(text[i])) i++;
            int start = i;
            while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] == '\'' || (text[i] == '-' && i + 1 < text.Length && char.IsLetterOrDigit(text[i + 1])))) i++;
            if (i > start) words.Add(SingularWord(text[start..i].ToLowerInvariant()));
        }
        return words;
    }

    /// <summary>A light English singular: "dresses" → "dress", "bags" → "bag", "shoes" → "shoe"; "glass" stays.</summary>
    internal static string SingularWord(string w)
    {
        if (w.Length > 4 && (w.EndsWith("sses", StringComparison.Ordinal) || w.EndsWith("ches", StringComparison.Ordinal) || w.EndsWith("shes", StringComparison.Ordinal)))
            return w[..^2];
        if (w.Length > 3 && w.EndsWith('s') && !w.EndsWith("ss", StringComparison.Ordinal) && !w.EndsWith("us", StringComparison.Ordinal))
            return w[..^1];
        return w;
    }
}
