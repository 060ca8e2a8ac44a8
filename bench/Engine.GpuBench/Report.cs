using System.Text;

namespace Engine.GpuBench;

/// <summary>Everything the run prints, kept to write out again: the log and a summary table.</summary>
internal sealed class Report
{
    private readonly StringBuilder _log = new();
    private readonly List<(string Section, string Item, string Value, string VsCopy, string Check)> _rows = new();

    public int Failures { get; private set; }

    public void Line(string text)
    {
        Console.WriteLine(text);
        Console.Out.Flush();
        _log.AppendLine(text);
    }

    /// <summary>One row of the final table; <paramref name="check"/> is PASS, FAIL or empty.</summary>
    public void Row(string section, string item, string value, string vsCopy = "", string check = "")
    {
        if (check.StartsWith("FAIL", StringComparison.Ordinal)) Failures++;
        _rows.Add((section, item, value, vsCopy, check));
    }

    public void Fail(string section, string what, Exception e)
    {
        Failures++;
        Line($"FAIL {section} {what}: {e.GetType().Name}: {e.Message}");
        _rows.Add((section, what, "error: " + e.GetType().Name, "", "FAIL"));
    }

    public string Summary()
    {
        var header = ("section", "item", "value", "of copy BW", "check");
        var all = new[] { header }.Concat(_rows).ToList();
        int w1 = all.Max(r => r.Item1.Length), w2 = all.Max(r => r.Item2.Length), w3 = all.Max(r => r.Item3.Length), w4 = all.Max(r => r.Item4.Length);
        var sb = new StringBuilder();
        foreach (var r in all)
            sb.AppendLine($"{r.Item1.PadRight(w1)}  {r.Item2.PadRight(w2)}  {r.Item3.PadLeft(w3)}  {r.Item4.PadLeft(w4)}  {r.Item5}".TrimEnd());
        return sb.ToString();
    }

    public string Log => _log.ToString();
}
