using System.CommandLine;
using System.Globalization;
using System.Text;
using Engine.Core.Gguf;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine inspect F</c>: the header, the metadata (long arrays abbreviated) and the tensor table of a GGUF
/// file, as Spectre tables on stdout.
/// </summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "GGUF file to describe" };
        var items = new Option<int>("--array-items")
        {
            Description = "Array elements shown before the rest is abbreviated",
            DefaultValueFactory = _ => 8,
        };
        var command = new Command("inspect", "Show a GGUF file's header, metadata and tensor table.");
        command.Arguments.Add(file);
        command.Options.Add(items);
        command.SetAction(parse => CliErrors.Run(() => Run(parse.GetValue(file)!, parse.GetValue(items))));
        return command;
    }

    private static int Run(string path, int arrayItems)
    {
        if (arrayItems < 0) throw new UserInputException($"--array-items {arrayItems}: must be 0 or more");
        using var f = GgufFile.Open(path);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        if (Console.IsOutputRedirected) console.Profile.Width = 200; // a pipe has no width: keep rows on one line

        var header = new Table().Title(Markup.Escape(path)).HideHeaders().AddColumns("field", "value");
        AddRow(header, "version", f.Version.ToString(CultureInfo.InvariantCulture));
        AddRow(header, "size", $"{f.Length:N0} bytes");
        AddRow(header, "alignment", f.Alignment.ToString(CultureInfo.InvariantCulture));
        AddRow(header, "data offset", f.DataOffset.ToString(CultureInfo.InvariantCulture));
        AddRow(header, "metadata keys", f.Metadata.Count.ToString(CultureInfo.InvariantCulture));
        AddRow(header, "tensors", f.Tensors.Count.ToString(CultureInfo.InvariantCulture));
        console.Write(header);

        var meta = new Table().Title("metadata").AddColumns("key", "type", "value");
        foreach (var (key, value) in f.Metadata.Entries)
            AddRow(meta, key, TypeName(value), Describe(value, arrayItems));
        console.Write(meta);

        var tensors = new Table().Title("tensors").AddColumns("name", "type", "shape", "bytes", "offset");
        foreach (var c in new[] { 3, 4 }) tensors.Columns[c].RightAligned();
        long totalBytes = 0, totalElements = 0;
        var byType = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in f.Tensors)
        {
            string bytes = "?";
            if (GgmlTypeInfo.IsSupported(t.Type))
            {
                bytes = t.ByteSize.ToString("N0", CultureInfo.InvariantCulture);
                totalBytes += t.ByteSize;
            }
            totalElements += t.ElementCount;
            byType[t.Type.ToString()] = byType.GetValueOrDefault(t.Type.ToString()) + 1;
            AddRow(tensors, t.Name, t.Type.ToString(), $"[{string.Join(", ", t.Shape)}]", bytes, t.Offset.ToString(CultureInfo.InvariantCulture));
        }
        tensors.Caption(Markup.Escape(
            $"{f.Tensors.Count} tensors ({string.Join(", ", byType.Select(p => $"{p.Value} {p.Key}"))}), " +
            $"{totalElements:N0} parameters, {totalBytes:N0} bytes"));
        console.Write(tensors);
        return ExitCodes.Ok;
    }

    private static void AddRow(Table table, params string[] cells) => table.AddRow(cells.Select(c => new Text(c)).ToArray());

    private static string TypeName(GgufValue v) => v.Type == GgufValueType.Array
        ? $"{v.ElementType}[{v.Count}]".ToLowerInvariant()
        : v.Type.ToString().ToLowerInvariant();

    /// <summary>A value as text; arrays show their first <paramref name="items"/> elements then "… (N more)".</summary>
    private static string Describe(GgufValue v, int items)
    {
        if (v.Value is not Array a) return Scalar(v.Value);
        var sb = new StringBuilder("[");
        int shown = Math.Min(items, a.Length);
        for (int i = 0; i < shown; i++)
        {
            if (i > 0) sb.Append(", ");
            object e = a.GetValue(i)!;
            sb.Append(e is GgufValue inner ? Describe(inner, items) : Scalar(e));
        }
        if (shown < a.Length) sb.Append(shown > 0 ? ", " : "").Append($"… ({a.Length - shown:N0} more)");
        return sb.Append(']').ToString();
    }

    private static string Scalar(object o) => o switch
    {
        string s => Quote(s),
        bool b => b ? "true" : "false",
        float x => x.ToString("R", CultureInfo.InvariantCulture),
        double x => x.ToString("R", CultureInfo.InvariantCulture),
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => o.ToString() ?? "",
    };

    /// <summary>A string in quotes, control characters escaped and long strings cut, so a row stays one line.</summary>
    private static string Quote(string s)
    {
        const int MaxChars = 120;
        var sb = new StringBuilder("\"");
        foreach (char c in s.Length > MaxChars ? s[..MaxChars] : s)
        {
            switch (c)
            {
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                default:
                    if (char.IsControl(c)) sb.Append($"\\u{(int)c:x4}");
                    else sb.Append(c);
                    break;
            }
        }
        if (s.Length > MaxChars) sb.Append($"…\" ({s.Length:N0} chars)");
        else sb.Append('"');
        return sb.ToString();
    }
}
