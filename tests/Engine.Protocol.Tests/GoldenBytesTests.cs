using System.Buffers;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Protocol.Tests;

/// <summary>
/// Golden bytes: the exact encoding docs/PROTOCOL.md describes, so a client written from the document
/// and this build agree byte for byte. A change here is a wire break.
/// </summary>
public class GoldenBytesTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    private static byte[] Frame<T>(Opcode op, FrameFlags flags, uint stream, T body)
    {
        var output = new ArrayBufferWriter<byte>();
        new FrameWriter().Write(output, op, flags, stream, body);
        return output.WrittenSpan.ToArray();
    }

    [Fact]
    public void Header_is_16_little_endian_bytes()
    {
        var bytes = new byte[16];
        new FrameHeader(Opcode.Recommend, FrameFlags.End, 0x01020304, 0x0A0B0C0D).Write(bytes);
        Assert.Equal(Hex("454E474E 01 08 0100 04030201 0D0C0B0A"), bytes);
    }

    [Fact]
    public void Error_body_is_a_version_tolerant_object_with_a_utf8_string()
    {
        byte[] body = MessageSerializer.ToBytes(ErrorBody.Of(ErrorCode.BadBody, "bad"));
        // 02 members; varint lengths 2 and 11; ushort 5; string: ~3 = -4, utf16 length 3, "bad"
        Assert.Equal(Hex("02 02 0B 0500 FCFFFFFF 03000000 626164"), body);
    }

    [Fact]
    public void Hello_frame_is_pinned()
    {
        byte[] frame = Frame(Opcode.Hello, FrameFlags.End, 0, new HelloRequest { ProtocolVersion = 1, Capabilities = 0, ApiKey = "k1", ClientName = "" });
        Assert.Equal(Hex(
            "454E474E 01 01 0100 00000000 1D000000" + // header: Hello, End, stream 0, body 29 bytes
            "04 02 08 0A 04" +                         // 4 members; lengths 2, 8, 10, 4
            "0100" +                                   // ProtocolVersion = 1
            "0000000000000000" +                       // Capabilities = 0
            "FDFFFFFF 02000000 6B31" +                 // ApiKey "k1" (~2, utf16 length 2, bytes)
            "00000000"),                                // ClientName "": empty is a single int 0
            frame);
    }

    [Fact]
    public void Null_string_and_empty_array_and_nested_object_encodings_are_pinned()
    {
        var result = new RecommendResult
        {
            RecommendationId = "r",
            Items = [new RecommendedItem { ProductId = "p", Score = 1.0f, Reason = "" }],
            ExperimentArm = "",
            ModelVersion = "",
        };
        byte[] body = MessageSerializer.ToBytes(result);
        Assert.Equal(Hex(
            "04 09 19 04 04" +                  // 4 members; lengths 9, 25, 4, 4
            "FEFFFFFF 01000000 72" +            // "r"
            "01000000" +                        // Items: collection of 1
            "03 09 04 04 FEFFFFFF 01000000 70 0000803F 00000000" + // item: 3 members (9, 4, 4): "p", 1.0f, Reason ""
            "00000000" +                        // ""
            "00000000"),                         // ""
            body);

        byte[] withNull = MessageSerializer.ToBytes(new ShopperEvent { CustomerId = "", Kind = 2, ProductId = "", RecommendationId = null, TimeUnixMs = 0 });
        Assert.Equal(Hex("05 04 01 04 04 08 00000000 02 00000000 FFFFFFFF 0000000000000000"), withNull);
    }

    [Fact]
    public void A_recommended_item_from_before_reason_was_added_still_reads_with_an_empty_reason()
    {
        // The item as version 1 first wrote it (2 members), inside a RecommendResult.
        byte[] old = Hex(
            "04 09 14 04 04" + "FEFFFFFF 01000000 72" + "01000000" +
            "02 09 04 FEFFFFFF 01000000 70 0000803F" + "00000000" + "00000000");
        var result = (RecommendResult)MessageSerializer.Deserialize(Opcode.RecommendResult, new ReadOnlySequence<byte>(old))!;
        Assert.Equal("p", result.Items[0].ProductId);
        Assert.Equal(1.0f, result.Items[0].Score);
        Assert.Equal("", result.Items[0].Reason);
    }

    [Fact]
    public void A_recommended_item_with_a_reason_is_pinned()
    {
        byte[] body = MessageSerializer.ToBytes(new RecommendedItem { ProductId = "p", Score = 1.0f, Reason = "ok" });
        Assert.Equal(Hex("03 09 04 0A FEFFFFFF 01000000 70 0000803F FDFFFFFF 02000000 6F6B"), body);
    }

    [Fact]
    public void Feedback_export_request_and_action_are_pinned()
    {
        byte[] request = MessageSerializer.ToBytes(new FeedbackExportRequest { TimeoutMs = 0, ExperimentId = "e", Arm = null, Offset = 200, MaxDecisions = 100 });
        Assert.Equal(Hex(
            "05 04 09 04 04 04" +               // 5 members; lengths 4, 9, 4, 4, 4
            "00000000" +                        // TimeoutMs 0
            "FEFFFFFF 01000000 65" +            // ExperimentId "e"
            "FFFFFFFF" +                        // Arm null (every arm)
            "C8000000 64000000"),               // Offset 200, MaxDecisions 100
            request);

        byte[] action = MessageSerializer.ToBytes(new FeedbackAction { ProductId = "p", Position = 2, Probability = 1f, Clicks = 1, Reward = 0.1 });
        Assert.Equal(Hex(
            "08 09 04 04 04 04 04 04 08" +      // 8 members
            "FEFFFFFF 01000000 70" +            // ProductId "p"
            "02000000 0000803F" +               // Position 2, Probability 1.0f
            "01000000 00000000 00000000 00000000" + // Clicks 1, Carts, Purchases, Returns 0
            "9A9999999999B93F"),                // Reward 0.1 (f64)
            action);
        Assert.Equal(Opcode.FeedbackExport, OpcodeBodies.OpcodeOf(new FeedbackExportRequest()));
        Assert.Equal(Roles.Admin, OpcodeRoles.Required(Opcode.FeedbackExport));
    }
}
