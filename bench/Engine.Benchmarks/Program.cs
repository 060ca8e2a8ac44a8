using BenchmarkDotNet.Running;

namespace Engine.Benchmarks;

/// <summary>BenchmarkDotNet entry point: <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*'</c>.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // A timed run outside BenchmarkDotNet (Control/IngestRun.cs).
        if (args.Length > 0 && args[0] == "ingest") return Control.IngestRun.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
