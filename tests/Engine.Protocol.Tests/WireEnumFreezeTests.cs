using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Protocol.Tests;

/// <summary>
/// Wire enums are append-only (STYLE.md habit 5). These tables are the shipped values: a change that
/// renumbers or removes one fails here. Adding a value means adding a row, never editing one.
/// </summary>
public class WireEnumFreezeTests
{
    private static void AssertFrozen<TEnum>(params (string Name, long Value)[] expected) where TEnum : struct, Enum
    {
        var actual = Enum.GetValues<TEnum>().Select(v => (Name: v.ToString(), Value: Convert.ToInt64(v))).ToArray();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Opcodes_are_frozen()
    {
        AssertFrozen<Opcode>(
            ("Invalid", 0), ("Hello", 1), ("HelloOk", 2), ("Error", 3), ("Overloaded", 4), ("Cancel", 5),
            ("Health", 6), ("HealthResult", 7), ("Recommend", 8), ("RecommendResult", 9), ("Generate", 10),
            ("GenerateToken", 11), ("GenerateDone", 12), ("Events", 13), ("EventsAck", 14), ("CatalogUpsert", 15),
            ("CatalogUpsertResult", 16), ("Experiment", 17), ("ExperimentResult", 18), ("Stats", 19),
            ("StatsResult", 20), ("GoAway", 21), ("FeedbackExport", 22), ("FeedbackExportResult", 23));
        Assert.Equal(typeof(byte), Enum.GetUnderlyingType(typeof(Opcode)));
    }

    [Fact]
    public void Error_codes_are_frozen()
    {
        AssertFrozen<ErrorCode>(
            ("None", 0), ("BadFrame", 1), ("UnsupportedVersion", 2), ("FrameTooLarge", 3), ("UnknownOpcode", 4),
            ("BadBody", 5), ("HelloRequired", 6), ("Unauthenticated", 7), ("Forbidden", 8), ("DeadlineExceeded", 9),
            ("Cancelled", 10), ("BadStreamId", 11), ("NotAvailable", 12), ("InvalidArgument", 13), ("Internal", 14),
            ("ShuttingDown", 15), ("NotFound", 16));
        Assert.Equal(typeof(ushort), Enum.GetUnderlyingType(typeof(ErrorCode)));
    }

    [Fact]
    public void Flags_roles_and_capabilities_are_frozen()
    {
        AssertFrozen<FrameFlags>(("None", 0), ("End", 1));
        AssertFrozen<Roles>(("None", 0), ("Storefront", 1), ("Admin", 2));
        AssertFrozen<Capabilities>(("None", 0), ("Recommend", 1), ("Generate", 2), ("Events", 4),
            ("CatalogAdmin", 8), ("Experiments", 16), ("Stats", 32), ("FeedbackExport", 64));
    }

    [Fact]
    public void Body_enums_are_frozen()
    {
        AssertFrozen<EventKind>(("Unknown", 0), ("View", 1), ("Click", 2), ("AddToCart", 3), ("Purchase", 4), ("Return", 5));
        AssertFrozen<FinishReason>(("Unknown", 0), ("EndOfText", 1), ("StopSequence", 2), ("MaxTokens", 3), ("ContextFull", 4));
        AssertFrozen<CopyReviewStatus>(("None", 0), ("AutoPublished", 1), ("PendingReview", 2), ("Approved", 3), ("Rejected", 4));
        AssertFrozen<HealthStatus>(("Ok", 0), ("Warming", 1), ("Draining", 2));
        AssertFrozen<ExperimentAction>(("Unknown", 0), ("Create", 1), ("SetSplit", 2), ("Stop", 3), ("Rollback", 4), ("Get", 5));
    }

    [Fact]
    public void Every_opcode_but_cancel_and_invalid_has_a_body_type_that_maps_back()
    {
        foreach (Opcode op in Enum.GetValues<Opcode>())
        {
            Type? type = OpcodeBodies.BodyType(op);
            if (op is Opcode.Invalid or Opcode.Cancel) { Assert.Null(type); continue; }
            Assert.NotNull(type);
            Assert.Equal(op, OpcodeBodies.OpcodeOf(Activator.CreateInstance(type)!));
        }
    }
}
