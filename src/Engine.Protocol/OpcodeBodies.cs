using Engine.Protocol.Messages;

namespace Engine.Protocol;

/// <summary>The message type carried by each opcode (docs/PROTOCOL.md, "Opcodes").</summary>
public static class OpcodeBodies
{
    /// <summary>The body type of <paramref name="opcode"/>; null for Cancel (empty body) and unknown opcodes.</summary>
    public static Type? BodyType(Opcode opcode) => opcode switch
    {
        Opcode.Hello => typeof(HelloRequest),
        Opcode.HelloOk => typeof(HelloOk),
        Opcode.Error => typeof(ErrorBody),
        Opcode.Overloaded => typeof(OverloadedBody),
        Opcode.Health => typeof(HealthRequest),
        Opcode.HealthResult => typeof(HealthResult),
        Opcode.Recommend => typeof(RecommendRequest),
        Opcode.RecommendResult => typeof(RecommendResult),
        Opcode.Generate => typeof(GenerateRequest),
        Opcode.GenerateToken => typeof(GenerateToken),
        Opcode.GenerateDone => typeof(GenerateDone),
        Opcode.Events => typeof(EventBatch),
        Opcode.EventsAck => typeof(EventsAck),
        Opcode.CatalogUpsert => typeof(CatalogUpsertRequest),
        Opcode.CatalogUpsertResult => typeof(CatalogUpsertResult),
        Opcode.Experiment => typeof(ExperimentCommand),
        Opcode.ExperimentResult => typeof(ExperimentResult),
        Opcode.Stats => typeof(StatsRequest),
        Opcode.StatsResult => typeof(StatsResult),
        Opcode.GoAway => typeof(GoAway),
        Opcode.FeedbackExport => typeof(FeedbackExportRequest),
        Opcode.FeedbackExportResult => typeof(FeedbackExportResult),
        _ => null,
    };

    /// <summary>True for opcodes a client may send (requests, Hello, Cancel).</summary>
    public static bool IsClientOpcode(Opcode opcode) => opcode is Opcode.Hello or Opcode.Cancel or Opcode.Health
        or Opcode.Recommend or Opcode.Generate or Opcode.Events or Opcode.CatalogUpsert or Opcode.Experiment or Opcode.Stats
        or Opcode.FeedbackExport;

    /// <summary>The opcode of a message type (inverse of <see cref="BodyType"/>).</summary>
    public static Opcode OpcodeOf(object body) => body switch
    {
        HelloRequest => Opcode.Hello,
        HelloOk => Opcode.HelloOk,
        ErrorBody => Opcode.Error,
        OverloadedBody => Opcode.Overloaded,
        HealthRequest => Opcode.Health,
        HealthResult => Opcode.HealthResult,
        RecommendRequest => Opcode.Recommend,
        RecommendResult => Opcode.RecommendResult,
        GenerateRequest => Opcode.Generate,
        GenerateToken => Opcode.GenerateToken,
        GenerateDone => Opcode.GenerateDone,
        EventBatch => Opcode.Events,
        EventsAck => Opcode.EventsAck,
        CatalogUpsertRequest => Opcode.CatalogUpsert,
        CatalogUpsertResult => Opcode.CatalogUpsertResult,
        ExperimentCommand => Opcode.Experiment,
        ExperimentResult => Opcode.ExperimentResult,
        StatsRequest => Opcode.Stats,
        StatsResult => Opcode.StatsResult,
        GoAway => Opcode.GoAway,
        FeedbackExportRequest => Opcode.FeedbackExport,
        FeedbackExportResult => Opcode.FeedbackExportResult,
        _ => throw new ArgumentException($"{body.GetType().Name} is not a protocol message."),
    };
}
