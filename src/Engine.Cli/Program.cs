using System.CommandLine;
using Engine.Cli.Commands;

namespace Engine.Cli;

/// <summary>The <c>engine</c> command: composition root of the service and its tools.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("Engine: int8 llama-family inference and product ranking for storefronts.");
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(QuantizeCommand.Create());
        root.Subcommands.Add(SynthModelCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(HealthCommand.Create());
        root.Subcommands.Add(LoadgenCommand.Create());
        root.Subcommands.Add(StatsCommand.Create());
        root.Subcommands.Add(EmbedCommand.Create());
        root.Subcommands.Add(CatalogCommand.Create());
        root.Subcommands.Add(RankCommand.Create());
        root.Subcommands.Add(FeedbackCommand.Create());
        root.Subcommands.Add(TrainHeadsCommand.Create());
        return root.Parse(args).Invoke();
    }
}
